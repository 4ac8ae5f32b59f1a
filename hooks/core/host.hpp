// What an MTA does with its modules: read the config, load each stanza's
// module, let every instance validate, and only then start them all (open
// files, register hooks). Stopping unregisters, drains and unloads.
#pragma once

#include <memory>
#include <string>
#include <variant>
#include <vector>

#include "core.hpp"
#include "core_config.hpp"
#include "module_loader.hpp"

namespace mtacore {

class Host {
public:
    // Parses and validates everything; opens and writes nothing. Returns the
    // host or the error line (a config error: the core exits with status 2).
    static std::variant<std::unique_ptr<Host>, std::string> configure(Core &core, const std::string &config_path,
                                                                      const std::string &default_modules_path);
    ~Host() { stop(); }

    // Starts every instance with registration open; "" or the error line.
    std::string start();
    // Stops instances in reverse order, then unloads the modules.
    void stop() noexcept;
    // Each instance's answer to a console command, prefixed by its label.
    std::string control(const std::string &command);

    [[nodiscard]] std::size_t instance_count() const noexcept { return instances_.size(); }
    [[nodiscard]] const CoreConfig &config() const noexcept { return config_; }

private:
    Host(Core &core, CoreConfig config) : core_(core), config_(std::move(config)) {}
    Core &core_;
    CoreConfig config_;
    std::vector<std::unique_ptr<ModuleInstance>> instances_;
};

} // namespace mtacore

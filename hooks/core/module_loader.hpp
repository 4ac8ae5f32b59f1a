// Loads `<modules_path>/<name>.so` with Boost.DLL and checks that it is a
// module of our ABI before calling anything in it. Every failure is one line
// naming the file and the reason.
#pragma once

#include <memory>
#include <string>
#include <variant>
#include <vector>

#include <boost/dll/shared_library.hpp>
#include <mtahooks/ec_module.h>

#include "document.hpp"

namespace mtacore {

class LoadedModule {
public:
    LoadedModule(boost::dll::shared_library library, const ec_module_info *info, std::string path)
        : library_(std::move(library)), info_(info), path_(std::move(path))
    {
    }
    [[nodiscard]] const ec_module_info &info() const noexcept { return *info_; }
    [[nodiscard]] const std::string &path() const noexcept { return path_; }

private:
    boost::dll::shared_library library_; // unloaded (dlclose) when the last user goes
    const ec_module_info *info_;
    std::string path_;
};

// The file a stanza `name { }` loads.
[[nodiscard]] std::string module_file(const std::string &modules_path, const std::string &name);

[[nodiscard]] std::variant<std::shared_ptr<LoadedModule>, std::string> load_module(const std::string &modules_path,
                                                                                   const std::string &name);

// One configured instance of a loaded module. Stopping it (or destroying it)
// calls the module's stop(); the module stays loaded while any instance of it
// exists.
class ModuleInstance {
public:
    ModuleInstance(std::shared_ptr<LoadedModule> module, std::string label, void *handle)
        : module_(std::move(module)), label_(std::move(label)), handle_(handle)
    {
    }
    ~ModuleInstance() { stop(); }
    ModuleInstance(const ModuleInstance &) = delete;
    ModuleInstance &operator=(const ModuleInstance &) = delete;

    [[nodiscard]] const std::string &label() const noexcept { return label_; }
    [[nodiscard]] const LoadedModule &module() const noexcept { return *module_; }
    std::string start(); // "" on success, else the error line
    std::string control(const std::string &command);
    void stop() noexcept;

private:
    std::shared_ptr<LoadedModule> module_;
    std::string label_;
    void *handle_;
};

// Converts a parsed stanza into the C view modules get, and creates the
// instance (validation only). Returns the instance or the error line.
[[nodiscard]] std::variant<std::unique_ptr<ModuleInstance>, std::string>
create_instance(ec_core *core, std::shared_ptr<LoadedModule> module, const mtacfg::Block &stanza);

} // namespace mtacore

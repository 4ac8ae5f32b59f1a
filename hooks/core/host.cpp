#include "host.hpp"

#include <map>

#include "parser.hpp"

namespace mtacore {

std::variant<std::unique_ptr<Host>, std::string> Host::configure(Core &core, const std::string &config_path,
                                                                 const std::string &default_modules_path)
{
    auto parsed = mtacfg::parse_file(config_path);
    if (auto *error = std::get_if<mtacfg::ConfigError>(&parsed))
        return error->render();
    auto core_config = read_core_config(std::get<mtacfg::Document>(parsed), default_modules_path);
    if (auto *error = std::get_if<mtacfg::ConfigError>(&core_config))
        return error->render();
    std::unique_ptr<Host> host(new Host(core, std::get<CoreConfig>(std::move(core_config))));
    core.set_bindings(host->config_.bindings);

    std::map<std::string, std::shared_ptr<LoadedModule>> modules;
    for (const auto &stanza : host->config_.module_stanzas) {
        const std::string name = mtacfg::to_lower(stanza.kind);
        auto &module = modules[name];
        if (!module) {
            auto loaded = load_module(host->config_.modules_path, name);
            if (auto *error = std::get_if<std::string>(&loaded))
                return stanza.where.file + ":" + std::to_string(stanza.where.line) + ":" +
                       std::to_string(stanza.where.column) + ": " + *error;
            module = std::get<std::shared_ptr<LoadedModule>>(loaded);
        }
        auto created = create_instance(core.c_api(), module, stanza);
        if (auto *error = std::get_if<std::string>(&created))
            return *error;
        host->instances_.push_back(std::get<std::unique_ptr<ModuleInstance>>(std::move(created)));
    }
    return host;
}

std::string Host::start()
{
    core_.hooks().open_registration();
    std::string error;
    for (auto &instance : instances_) {
        error = instance->start();
        if (!error.empty())
            break;
    }
    core_.hooks().close_registration();
    if (!error.empty())
        stop();
    return error;
}

void Host::stop() noexcept
{
    while (!instances_.empty()) {
        instances_.back()->stop();
        instances_.pop_back(); // the last instance of a module unloads its .so
    }
}

std::string Host::control(const std::string &command)
{
    std::string out;
    for (auto &instance : instances_) {
        std::string answer = instance->control(command);
        std::size_t line_start = 0;
        while (line_start < answer.size()) {
            auto end = answer.find('\n', line_start);
            if (end == std::string::npos)
                end = answer.size();
            out += instance->label() + ": " + answer.substr(line_start, end - line_start) + "\n";
            line_start = end + 1;
        }
    }
    return out;
}

} // namespace mtacore

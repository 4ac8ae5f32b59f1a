#include "module_loader.hpp"

#include <filesystem>
#include <fstream>
#include <system_error>

#include "core_config.hpp"
#include "suggest.hpp"

namespace mtacore {

namespace fs = std::filesystem;

namespace {

std::vector<std::string> available_modules(const std::string &modules_path)
{
    std::vector<std::string> names;
    std::error_code ec;
    for (const auto &entry : fs::directory_iterator(modules_path, ec))
        if (entry.path().extension() == ".so")
            names.push_back(entry.path().stem().string());
    return names;
}

bool looks_like_elf(const std::string &path)
{
    std::ifstream in(path, std::ios::binary);
    char magic[4] = {};
    in.read(magic, 4);
    return in.gcount() == 4 && magic[0] == 0x7f && magic[1] == 'E' && magic[2] == 'L' && magic[3] == 'F';
}

} // namespace

std::string module_file(const std::string &modules_path, const std::string &name)
{
    return (fs::path(modules_path) / (name + ".so")).string();
}

std::variant<std::shared_ptr<LoadedModule>, std::string> load_module(const std::string &modules_path,
                                                                     const std::string &name)
{
    const std::string path = module_file(modules_path, name);
    std::error_code ec;
    if (!fs::exists(path, ec)) {
        std::string hint = mtacfg::did_you_mean(name, available_modules(modules_path));
        if (!fs::is_directory(modules_path, ec))
            hint += "; modules_path \"" + modules_path + "\" is not a directory";
        return path + ": no such module file for stanza '" + name + "'" + hint;
    }
    if (!fs::is_regular_file(path, ec))
        return path + ": not a regular file";
    if (!looks_like_elf(path))
        return path + ": not a shared object (no ELF header)";

    boost::dll::shared_library library;
    boost::dll::fs::error_code load_error;
    library.load(fs::path(path), boost::dll::load_mode::rtld_now | boost::dll::load_mode::rtld_local, load_error);
    if (load_error)
        return path + ": cannot load: " + load_error.message();
    if (!library.has(EC_MODULE_ENTRY_SYMBOL))
        return path + ": not an mtahooks module (no " EC_MODULE_ENTRY_SYMBOL " symbol)";
    const auto entry = library.get<const ec_module_info *()>(EC_MODULE_ENTRY_SYMBOL);
    const ec_module_info *info = entry();
    if (info == nullptr)
        return path + ": " EC_MODULE_ENTRY_SYMBOL "() returned NULL";
    if (info->abi_version != EC_ABI_VERSION)
        return path + ": module ABI version " + std::to_string(info->abi_version) +
               " does not match this core's ABI version " + std::to_string(EC_ABI_VERSION);
    if (info->size < sizeof(ec_module_info) || !info->create || !info->start || !info->stop || !info->control)
        return path + ": module info is incomplete (size " + std::to_string(info->size) + ", expected " +
               std::to_string(sizeof(ec_module_info)) + ")";
    return std::make_shared<LoadedModule>(std::move(library), info, path);
}

std::string ModuleInstance::start()
{
    char err[2048] = "";
    if (module_->info().start(handle_, err, sizeof err) != EC_MODULE_OK)
        return err[0] ? std::string(err) : label_ + ": start failed";
    return {};
}

std::string ModuleInstance::control(const std::string &command)
{
    char out[16384] = "";
    module_->info().control(handle_, command.c_str(), out, sizeof out);
    return out;
}

void ModuleInstance::stop() noexcept
{
    if (handle_ != nullptr) {
        module_->info().stop(handle_);
        handle_ = nullptr;
    }
}

std::variant<std::unique_ptr<ModuleInstance>, std::string>
create_instance(ec_core *core, std::shared_ptr<LoadedModule> module, const mtacfg::Block &stanza)
{
    std::vector<ec_config_option> options;
    options.reserve(stanza.options.size());
    for (const auto &o : stanza.options)
        options.push_back(ec_config_option{o.name.c_str(), o.value.c_str(), o.where.file.c_str(), o.where.line,
                                           o.where.column, o.value_where.column});
    ec_config_stanza c{};
    c.module = stanza.kind.c_str();
    c.instance = stanza.instance ? stanza.instance->c_str() : nullptr;
    c.file = stanza.where.file.c_str();
    c.line = stanza.where.line;
    c.column = stanza.where.column;
    c.options = options.data();
    c.option_count = options.size();

    const std::string label = stanza_label(stanza);
    char err[2048] = "";
    void *handle = nullptr;
    if (module->info().create(core, &c, &handle, err, sizeof err) != EC_MODULE_OK) {
        if (handle != nullptr)
            module->info().stop(handle);
        return err[0] ? std::string(err) : stanza.where.file + ":" + std::to_string(stanza.where.line) + ": " + label + ": refused its configuration";
    }
    return std::make_unique<ModuleInstance>(std::move(module), label, handle);
}

} // namespace mtacore

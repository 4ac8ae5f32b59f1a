// The Exim adapter on random event arguments: the input is cut at NUL bytes
// into $event_data, $message_exim_id, $local_part@$domain, the host triple,
// the errno and $message_size (its first byte picks the event). Each record
// is written by the adapter to real files, read back, and must keep every
// line's invariants in mainlog and JSON (which must parse).
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <fstream>
#include <string>
#include <unistd.h>
#include <vector>

#include <nlohmann/json.hpp>

#include "exim_adapter.hpp"
#include "fuzz_invariants.hpp"

namespace {

struct Files {
    std::string dir, mainlog, json;
    std::unique_ptr<mtalog::exim::Adapter> adapter;

    Files()
    {
        char tmpl[] = "/tmp/mtalog-fuzz-exim-XXXXXX";
        if (::mkdtemp(tmpl) == nullptr)
            std::abort();
        dir = tmpl;
        mainlog = dir + "/m.ec";
        json = dir + "/r.json";
        std::ofstream(dir + "/mtalog.conf")
            << "mtalog \"m\" { mainlog = \"" << mainlog << "\" }\n"
            << "mtalog \"j\" {\n  attempt_logfile = \"" << json << "\"\n  attempt_format = json\n"
            << "  connection_failure_logfile = \"" << json << "\"\n  connection_failure_format = json\n"
            << "  permanent_failure_logfile = \"" << json << "\"\n  permanent_failure_format = json\n}\n";
        auto loaded = mtalog::exim::Adapter::load(dir + "/mtalog.conf");
        if (!std::holds_alternative<std::unique_ptr<mtalog::exim::Adapter>>(loaded))
            std::abort();
        adapter = std::move(std::get<std::unique_ptr<mtalog::exim::Adapter>>(loaded));
    }
};

std::vector<std::string> lines_and_truncate(const std::string &path)
{
    std::vector<std::string> lines;
    std::ifstream in(path);
    for (std::string line; std::getline(in, line);)
        lines.push_back(line);
    if (::truncate(path.c_str(), 0) != 0) {
    }
    return lines;
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t *data, std::size_t size)
{
    static Files files;
    if (size == 0)
        return 0;
    static const char *const kEvents[] = {"tcp:connect", "msg:host:defer", "msg:fail:delivery", "tcp:close"};
    const char *name = kEvents[data[0] % 4];
    std::vector<std::string> parts(6);
    std::size_t k = 0;
    for (std::size_t i = 1; i < size; ++i) {
        if (data[i] == 0) {
            if (++k == parts.size())
                break;
            continue;
        }
        parts[k].push_back(static_cast<char>(data[i]));
    }
    const mtalog::exim::Event event{name, parts[0], parts[1], parts[2], parts[3], parts[4], parts[5]};
    if (auto error = files.adapter->handle(event))
        fuzzing::require(false, "the adapter failed to write", *error);
    const bool mapped = data[0] % 4 != 3;
    const auto mainlog = lines_and_truncate(files.mainlog);
    const auto json = lines_and_truncate(files.json);
    fuzzing::require(mainlog.size() == (mapped ? 1u : 0u), "not one mainlog line per mapped event", "");
    fuzzing::require(json.size() == (mapped ? 1u : 0u), "not one JSON line per mapped event", "");
    for (const auto &line : mainlog)
        fuzzing::check_line(line);
    for (const auto &line : json) {
        fuzzing::check_line(line);
        fuzzing::require(!nlohmann::json::parse(line, nullptr, false).is_discarded(), "JSON does not parse", line);
    }
    return 0;
}

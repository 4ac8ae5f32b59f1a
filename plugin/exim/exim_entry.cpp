// Exim's entry point, mtalog_exim_event(): the module's second exported
// symbol (see mtalog.map; the core's is ec_module_entry() in entry.cpp).
// Exim calls it through ${dlfunc} from event_action; no exception gets past it.
#include <algorithm>
#include <cstring>
#include <mutex>
#include <string>

#include "exim_adapter.hpp"

namespace mtalog::exim {

namespace {

// Exim's return codes for a dlfunc (local_scan.h).
constexpr int kEximOk = 0;
constexpr int kEximError = 3; // the expansion fails; Exim writes *yield to its main and panic logs

// *yield must point at a writable string; Exim copies it before the next call.
char g_empty[1] = "";
char g_message[1024];

int answer(unsigned char **yield, int code, const std::string &message = {})
{
    if (code == kEximOk) {
        g_empty[0] = '\0';
        *yield = reinterpret_cast<unsigned char *>(g_empty);
        return code;
    }
    const std::string text = "mtalog: " + message;
    const std::size_t n = std::min(text.size(), sizeof g_message - 1);
    std::memcpy(g_message, text.data(), n);
    g_message[n] = '\0';
    *yield = reinterpret_cast<unsigned char *>(g_message);
    return code;
}

// A dlfunc gets at most 8 arguments. When it is given all 8, Exim (4.92 to
// 4.96 at least) leaves the argument vector without its NULL terminator
// (read_subs fills every slot) and counts `argc` past it into whatever the
// stack holds: a larger argc is garbage and its extra pointers are never
// read.
constexpr int kEximMaxArgs = 8;

std::string_view arg(int argc, unsigned char *argv[], int i)
{
    if (i >= argc || argv == nullptr || argv[i] == nullptr)
        return {};
    return reinterpret_cast<const char *>(argv[i]);
}

} // namespace

} // namespace mtalog::exim

// ${dlfunc{/path/mtalog.so}{mtalog_exim_event}{CONFIG}{$event_name}{$event_data}
//   {$message_exim_id}{$local_part@$domain}{$host_address $host_port $host}
//   {${if match{$event_name}{defer}{$event_defer_errno}{}}}{$message_size}}
// That is all 8 arguments a dlfunc takes, so the protocol and headers (%p,
// %h{Name}) come in a call of their own before it, in the same event_action:
// ${dlfunc{/path/mtalog.so}{mtalog_exim_event}{CONFIG}{mtalog:message}
//   {$message_exim_id}{$received_protocol}{Subject: $h_subject:}...}
extern "C" __attribute__((visibility("default"))) int mtalog_exim_event(unsigned char **yield, int argc,
                                                                       unsigned char *argv[])
{
    using namespace mtalog::exim;
    if (yield == nullptr)
        return kEximError;
    try {
        static std::mutex mutex; // Exim is single-threaded; this only keeps a threaded caller safe
        std::lock_guard lock(mutex);
        argc = std::min(argc, kEximMaxArgs);
        if (argc < 2)
            return answer(yield, kEximError, "usage: mtalog_exim_event CONFIG $event_name [$event_data "
                                             "$message_exim_id $local_part@$domain \"$host_address $host_port "
                                             "$host\" errno $message_size], or CONFIG mtalog:message $message_exim_id "
                                             "$received_protocol [\"Name: value\" ...]");
        const std::string config(arg(argc, argv, 0));
        if (arg(argc, argv, 1) == "mtalog:message") {
            auto adapter = Adapter::for_path(config);
            if (auto *error = std::get_if<std::string>(&adapter))
                return answer(yield, kEximError, *error);
            std::vector<std::string_view> headers;
            for (int i = 4; i < argc; ++i)
                headers.push_back(arg(argc, argv, i));
            if (auto error = std::get<Adapter *>(adapter)->remember(arg(argc, argv, 2), arg(argc, argv, 3), headers))
                return answer(yield, kEximError, *error);
            return answer(yield, kEximOk);
        }
        const Event event{arg(argc, argv, 1), arg(argc, argv, 2), arg(argc, argv, 3), arg(argc, argv, 4),
                          arg(argc, argv, 5), arg(argc, argv, 6), arg(argc, argv, 7)};
        auto adapter = Adapter::for_path(config);
        if (auto *error = std::get_if<std::string>(&adapter))
            return answer(yield, kEximError, *error);
        if (auto error = std::get<Adapter *>(adapter)->handle(event))
            return answer(yield, kEximError, *error);
        return answer(yield, kEximOk);
    } catch (const std::exception &e) {
        return answer(yield, kEximError, e.what());
    } catch (...) {
        return answer(yield, kEximError, "unexpected error");
    }
}

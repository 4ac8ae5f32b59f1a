// mtalog-ship's configuration inputs on arbitrary bytes: its config file (the
// ship stanza and the mtalog stanzas it reads), its credentials file, and the
// secrets parser under it. The first byte picks one. Any input gives a result
// or an error with a position; an error about a secrets file never quotes a
// secret planted in it.
#include <cstddef>
#include <cstdint>
#include <string>
#include <sys/stat.h>

#include "credentials.hpp"
#include "fuzz_ship_files.hpp"
#include "parser.hpp"
#include "ship_config.hpp"

namespace {
constexpr const char *kSecret = "Zq7SECRETvalue9Xw";
} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t *data, std::size_t size)
{
    if (size == 0)
        return 0;
    const std::string text(reinterpret_cast<const char *>(data) + 1, size - 1);
    switch (data[0] % 3) {
    case 0: {
        // A known secret planted in whatever the input is: no error may show it.
        const std::string planted = text + "\npassword = \"" + kSecret + "\"\n" + text;
        auto parsed = mtacfg::parse_secrets(planted, "fuzz.secrets");
        if (const auto *error = std::get_if<mtacfg::ConfigError>(&parsed)) {
            fuzzing::expect(error->where.line >= 1 && !error->message.empty(), "a secrets error without a position");
            fuzzing::expect(error->message.find(kSecret) == std::string::npos, "a secrets error quotes the file");
        }
        break;
    }
    case 1: {
        const std::string path = fuzzing::as_file(text, ".conf");
        auto loaded = mtalog::ship::load_settings(path);
        if (const auto *error = std::get_if<std::string>(&loaded))
            fuzzing::expect(!error->empty(), "an empty config error");
        break;
    }
    default: {
        mtalog::ship::Credentials out;
        const std::string planted = text + "\ntoken = \"" + kSecret + "\"\n" + text;
        const std::string path = fuzzing::as_file(planted, ".credentials");
        ::chmod(path.c_str(), 0600);
        if (const auto error = mtalog::ship::read_credentials(path, mtacfg::Location{"ship.conf", 3, 17}, out))
            fuzzing::expect(error->find(kSecret) == std::string::npos, "a credentials error quotes the file");
        break;
    }
    }
    return 0;
}

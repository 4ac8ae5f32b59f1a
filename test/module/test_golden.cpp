// Golden files: each test/golden/NAME.jsonl is replayed through the real
// module into one mainlog file and must give NAME.expected line for line.
// NAME.options (optional) holds extra stanza lines. In expected lines,
// <NOW> stands for the time of a record whose `now` was null: it must be a
// unix time within the run.
#include <catch2/catch.hpp>

#include <cstdlib>

#include <algorithm>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "replay.hpp"
#include "test_support.hpp"

namespace {

bool matches(const std::string &expected, const std::string &actual, std::time_t t0, std::time_t t1)
{
    const std::string marker = "<NOW>";
    std::size_t e = 0, a = 0;
    while (e < expected.size()) {
        if (expected.compare(e, marker.size(), marker) == 0) {
            const std::size_t digits_start = a;
            while (a < actual.size() && actual[a] >= '0' && actual[a] <= '9')
                ++a;
            if (a == digits_start || a - digits_start > 12)
                return false;
            const long long t = std::stoll(actual.substr(digits_start, a - digits_start));
            if (t < t0 || t > t1)
                return false;
            e += marker.size();
        } else {
            if (a >= actual.size() || actual[a] != expected[e])
                return false;
            ++a;
            ++e;
        }
    }
    return a == actual.size();
}

std::vector<std::string> fixtures()
{
    std::vector<std::string> names;
    for (const auto &e : std::filesystem::directory_iterator(testing::source_dir() + "/test/golden"))
        if (e.path().extension() == ".jsonl")
            names.push_back(e.path().stem().string());
    std::sort(names.begin(), names.end());
    return names;
}

} // namespace

TEST_CASE("golden replay fixtures give exactly the expected mainlog lines", "[golden]")
{
    const auto names = fixtures();
    REQUIRE(names.size() >= 4);
    for (const auto &name : names) {
        DYNAMIC_SECTION(name)
        {
            const std::string base = testing::source_dir() + "/test/golden/" + name;
            testing::TempDir dir;
            std::string extra;
            if (std::filesystem::exists(base + ".options"))
                extra = testing::read_file(base + ".options");
            const std::string out = dir / "out.log";
            testing::Harness h(dir, "mainlog = \"" + out + "\"\n" + extra,
                               "Binding_Group \"pool-a\" { Binding \"mta1\" { } Binding \"mta2\" { } }\n"
                               "Binding_Group \"pool-b\" { Binding \"mta3\" { } }\n");
            REQUIRE(h.error().empty());
            std::ifstream in(base + ".jsonl");
            std::ostringstream errors;
            std::atomic<bool> stop{false};
            const std::time_t t0 = std::time(nullptr);
            const auto stats = mtacore::replay(h.core(), in, name, stop, errors);
            h.stop();
            const std::time_t t1 = std::time(nullptr);
            CHECK(errors.str().empty());
            CHECK(stats.bad_lines == 0);
            const auto actual = testing::read_lines(out);
            // MTALOG_GOLDEN_UPDATE=1 rewrites an expected file from this run
            // (for a deliberate format change; review the diff), except one
            // with <NOW>, which is edited by hand.
            if (std::getenv("MTALOG_GOLDEN_UPDATE") != nullptr) {
                if (testing::read_file(base + ".expected").find("<NOW>") == std::string::npos)
                    std::filesystem::copy_file(out, base + ".expected", std::filesystem::copy_options::overwrite_existing);
                FAIL_CHECK("MTALOG_GOLDEN_UPDATE: " << name << ".expected rewritten; review the diff, then run without it");
            }
            const auto expected = testing::read_lines(base + ".expected");
            CHECK(actual.size() == expected.size());
            for (std::size_t i = 0; i < std::min(expected.size(), actual.size()); ++i) {
                INFO(name << ".expected line " << i + 1 << "\n  expected: " << expected[i] << "\n  actual:   "
                          << actual[i]);
                CHECK(matches(expected[i], actual[i], t0, t1));
            }
        }
    }
}

// mtalog-ship's state files taken as untrusted input: what they may hold is
// what the shipper and tail could have written, and nothing else is loaded
// (a corrupted or planted file is refused with its path, never acted on).
// Also tail's output names, which come from stream subjects.
#include <catch2/catch.hpp>

#include <string>
#include <variant>

#include "cursor.hpp"
#include "tail_outputs.hpp"
#include "tail_state.hpp"
#include "test_support.hpp"

using namespace mtalog::ship;

namespace {

std::string cursor_with(const std::string &entry_fields)
{
    return R"({"version": 2, "node": "n1", "scan_from": 0, "files": {"00000000000000aa": {"path": "a.log",
        "canonical": "00000000000000aa", "generation": 0, "final": 500, "fp": [0, "0000000000000000"], "ids": [],)" +
           entry_fields + "}}}";
}

} // namespace

TEST_CASE("ship state: a cursor with an empty or reversed skipped range, or a finished file ending past its size, "
          "is refused",
          "[ship]")
{
    testing::TempDir dir;
    const std::string path = dir / "cursor.json";
    testing::write_file(path, cursor_with(R"("done": [600, 700], "skipped": [[500, 600]])"));
    REQUIRE(std::holds_alternative<Cursor>(load_cursor(path))); // the well-formed one loads
    for (const char *bad : {R"("done": null, "skipped": [[500, 100]])", R"("done": null, "skipped": [[500, 500]])",
                            R"("done": [700, 600])"}) {
        testing::write_file(path, cursor_with(bad));
        const auto loaded = load_cursor(path);
        INFO(bad);
        REQUIRE(std::holds_alternative<std::string>(loaded));
        CHECK(std::get<std::string>(loaded).find(path) != std::string::npos);
    }
}

TEST_CASE("ship state: tail's output names stay inside --out-dir whatever the subject", "[ship]")
{
    CHECK(Outputs::name_of("mtalog.n1.attempt") == "n1.attempt.log");
    for (const char *subject : {"mtalog.x/..//..//tmp.pwn", "mtalog..attempt", "mtalog.../x", "/etc/passwd",
                                "mtalog.a.b/c"}) {
        const std::string name = Outputs::name_of(subject);
        INFO(subject << " -> " << name);
        CHECK(Outputs::is_name(name));
        CHECK(name.find('/') == std::string::npos);
        CHECK(name.front() != '.');
    }
    // A state file naming a path out of the directory is refused, not
    // acted on (tail cuts each output back to its recorded length).
    testing::TempDir dir;
    for (const char *name : {"../x.log", "a/b.log", ".hidden.log", ""}) {
        testing::write_file(dir / "state",
                            std::string(R"({"version": 1, "outputs": {")") + name + R"(": 0}, "seen": {}})");
        const auto loaded = TailState::load(dir / "state");
        INFO(name);
        REQUIRE(std::holds_alternative<std::string>(loaded));
        CHECK(std::get<std::string>(loaded).find("not an output file name") != std::string::npos);
    }
    // File keys are spelled as the cursor spells them: no sign, no 0x.
    testing::write_file(dir / "state",
                        R"({"version": 1, "outputs": {}, "seen": {"n1": {"-000000000000001": {"used": 0, "ranges": []}}}})");
    CHECK(std::holds_alternative<std::string>(TailState::load(dir / "state")));
}

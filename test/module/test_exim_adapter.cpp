// The Exim adapter without Exim: its dlfunc entry point loaded from the real
// mtalog.so, the errno and stage mappings, config errors with file:line, the
// synchronous writer's reopen on an inode change, whole lines and a single
// CSV header from several processes at once, and no thread started.
#include <catch2/catch.hpp>

#include <boost/dll/shared_library.hpp>
#include <cerrno>
#include <cstdint>
#include <filesystem>
#include <set>
#include <sys/wait.h>
#include <unistd.h>

#include "exim_adapter.hpp"
#include "sync_file.hpp"
#include "file_checks.hpp"

namespace fs = std::filesystem;
using mtalog::exim::conn_flags_for_errno;
using mtalog::exim::stage_of_smtp_error;

namespace {

using EximFunction = int(unsigned char **, int, unsigned char **);

// The real module, loaded the way Exim's ${dlfunc} finds the function.
struct EximEntry {
    boost::dll::shared_library so{testing::modules_dir() + "/mtalog.so", boost::dll::load_mode::rtld_now};
    EximFunction *function = so.get<EximFunction>("mtalog_exim_event");

    // Returns Exim's status code; `yield` gets the text. `garbage`: that
    // many more pointers counted in argc that point nowhere, as Exim passes
    // them after all 8 arguments (its vector then has no NULL terminator).
    int call(const std::vector<std::string> &args, std::string *yield = nullptr, int garbage = 0) const
    {
        std::vector<std::string> copies = args; // Exim hands writable strings
        std::vector<unsigned char *> argv;
        for (auto &a : copies)
            argv.push_back(reinterpret_cast<unsigned char *>(a.data()));
        for (int i = 0; i < garbage; ++i)
            argv.push_back(reinterpret_cast<unsigned char *>(std::uintptr_t{0xff} + static_cast<std::uintptr_t>(i)));
        unsigned char *out = nullptr;
        const int rc = function(&out, static_cast<int>(argv.size()), argv.data());
        if (yield)
            *yield = out ? reinterpret_cast<const char *>(out) : "(null)";
        return rc;
    }
};

std::vector<std::string> event(const std::string &config, const std::string &name, const std::string &id,
                               const std::string &data = "", const std::string &err = "")
{
    return {config, name, data, id, "user@example.com", "192.0.2.25 25 mx.example.com", err, "1234"};
}

} // namespace

TEST_CASE("exim: errno of a host defer to CONN_* flags, raw errno kept apart", "[exim]")
{
    CHECK(conn_flags_for_errno(ECONNREFUSED) == (CONN_ACTION_REQUEUE1 | CONN_ERROR_CONNECT));
    CHECK(conn_flags_for_errno(ETIMEDOUT) == (CONN_ACTION_REQUEUE1 | CONN_ERROR_CONNECT_TIMEOUT));
    CHECK(conn_flags_for_errno(-43) == (CONN_ACTION_REQUEUE1 | CONN_ERROR_CONNECT_TIMEOUT)); // Exim's connect timeout
    CHECK(conn_flags_for_errno(EHOSTUNREACH) == (CONN_ACTION_REQUEUE1 | CONN_ERROR_CONNECT_NETWORK));
    CHECK(conn_flags_for_errno(ENETUNREACH) == (CONN_ACTION_REQUEUE1 | CONN_ERROR_CONNECT_NETWORK));
    CHECK(conn_flags_for_errno(EADDRNOTAVAIL) == (CONN_ACTION_REQUEUE1 | CONN_ERROR_BIND));
    CHECK(conn_flags_for_errno(EMFILE) == (CONN_ACTION_REQUEUE1 | CONN_ERROR_SOCKET));
    CHECK(conn_flags_for_errno(-32) == (CONN_ACTION_REQUEUE1 | CONN_ERROR_MX_LOOKUP_FAILED)); // unknown host
    CHECK(conn_flags_for_errno(-44) == CONN_ACTION_REQUEUE1); // RCPT 4xx: requeued, no connection error
    CHECK(conn_flags_for_errno(0) == CONN_ACTION_REQUEUE1);
}

TEST_CASE("exim: the stage an SMTP error names", "[exim]")
{
    CHECK(stage_of_smtp_error("SMTP error from remote mail server after RCPT TO:<a@b>: 550 no") == EC_STAGE_AFTER_RCPT_TO);
    CHECK(stage_of_smtp_error("SMTP error from remote mail server after MAIL FROM:<> SIZE=1: 553 no") ==
          EC_STAGE_AFTER_MAIL_FROM);
    CHECK(stage_of_smtp_error("SMTP error from remote mail server after end of data: 554 spam") ==
          EC_STAGE_READING_CONFIRMATION);
    CHECK(stage_of_smtp_error("SMTP error from remote mail server after initial connection: 554 go away") ==
          EC_STAGE_BANNER);
    CHECK(stage_of_smtp_error("Unrouteable address") == EC_STAGE_UNKNOWN);
}

TEST_CASE("exim: the dlfunc writes one mainlog line per mapped event and ignores the rest", "[exim]")
{
    testing::TempDir dir;
    const std::string config = dir / "mtalog.conf";
    testing::write_file(config, "mtalog {\n  mainlog = \"" + dir / "m.ec" + "\"\n}\n");
    const std::size_t threads = testing::thread_count();
    EximEntry exim;
    std::string yield;
    CHECK(exim.call(event(config, "tcp:connect", "1xUx4h-0002Mt-2o"), &yield) == 0);
    CHECK(yield.empty());
    CHECK(exim.call(event(config, "msg:host:defer", "1xUx4h-0002Mt-2o", "Connection refused", "111")) == 0);
    CHECK(exim.call(event(config, "msg:fail:delivery", "1xUx4h-0002Mt-2p",
                          "SMTP error from remote mail server after RCPT TO:<user@example.com>: 550 5.1.1 no @ such\tuser")) == 0);
    for (const char *ignored : {"tcp:close", "msg:delivery", "msg:defer", "smtp:connect", "tls:cert", ""})
        CHECK(exim.call(event(config, ignored, "1xUx4h-0002Mt-2o")) == 0);
    CHECK(testing::thread_count() == threads); // nothing a fork could break

    const auto lines = testing::read_lines(dir / "m.ec");
    REQUIRE(lines.size() == 3);
    // time@id@batch@conn@A@domain@size@group@binding@stage@retries@elapsed@remote_ip@note
    CHECK(lines[0].substr(lines[0].find('@')) == "@1xUx4h-0002Mt-2o@@@A@example.com@1234@@@0@0@@192.0.2.25@");
    CHECK(lines[1].substr(lines[1].find('@')) ==
          "@1xUx4h-0002Mt-2o@@@C@example.com@192.0.2.25:25@@@0@8193@CONN_ACTION_REQUEUE1|CONN_ERROR_CONNECT");
    CHECK(lines[2].substr(lines[2].find('@')) ==
          "@1xUx4h-0002Mt-2p@@@P@example.com@1234@@@5@0@@192.0.2.25@SMTP error from remote mail server after RCPT "
          "TO:<user@example.com>: 550 5.1.1 no @ such\\x09user");
}

TEST_CASE("exim: config errors reach Exim's panic log through the yield, with file:line:column", "[exim]")
{
    testing::TempDir dir;
    EximEntry exim;
    std::string yield;
    const std::string missing = dir / "missing.conf";
    CHECK(exim.call(event(missing, "tcp:connect", "x"), &yield) == 3);
    CHECK(yield.rfind("mtalog: " + missing + ": ", 0) == 0);

    const std::string rotating = dir / "rotating.conf";
    testing::write_file(rotating, "mtalog {\n  mainlog = \"" + dir / "m.ec" + "\"\n  rotate_size = 10M\n}\n");
    CHECK(exim.call(event(rotating, "tcp:connect", "x"), &yield) == 3);
    CHECK(yield.rfind("mtalog: " + rotating + ":3:3: rotate_size is not available with Exim", 0) == 0);

    const std::string typo = dir / "typo.conf";
    testing::write_file(typo, "mtalog {\n  mainlgo = \"" + dir / "m.ec" + "\"\n}\n");
    CHECK(exim.call(event(typo, "tcp:connect", "x"), &yield) == 3);
    CHECK(yield.find(typo + ":2:3: ") != std::string::npos);
    CHECK(yield.find("mainlog") != std::string::npos); // the suggestion

    const std::string other = dir / "other.conf";
    testing::write_file(other, "Binding_Group \"a\" { }\n");
    CHECK(exim.call(event(other, "tcp:connect", "x"), &yield) == 3);
    CHECK(yield == "mtalog: " + other + ":1:1: 'Binding_Group' stanza in an mtalog config for Exim (only mtalog "
                                        "stanzas belong here)");

    const std::string twice = dir / "twice.conf";
    testing::write_file(twice, "mtalog \"a\" { mainlog = \"" + dir / "m.ec" + "\" }\nmtalog \"b\" {\n  attempt_logfile = \"" +
                                   dir / "./m.ec" + "\"\n}\n");
    CHECK(exim.call(event(twice, "tcp:connect", "x"), &yield) == 3);
    CHECK(yield == "mtalog: " + twice + ":2:1: log file \"" + dir / "./m.ec" +
                       "\" is already written by mtalog \"a\" (one stanza per file)");

    CHECK(exim.call({}, &yield) == 3);
    CHECK(yield.rfind("mtalog: usage: mtalog_exim_event CONFIG", 0) == 0);
    CHECK_FALSE(fs::exists(dir / "m.ec"));
}

TEST_CASE("exim: a moved or removed file is reopened at its path; a write error is reported", "[exim]")
{
    testing::TempDir dir;
    mtalog::exim::SyncFile file(dir / "a.log", 0640, false, "header");
    REQUIRE_FALSE(file.append("one\n"));
    fs::rename(dir / "a.log", dir / "a.log.1");
    REQUIRE_FALSE(file.append("two\n"));
    fs::remove(dir / "a.log");
    REQUIRE_FALSE(file.append("three\n"));
    CHECK(file.opens() == 3);
    CHECK(testing::read_lines(dir / "a.log.1") == std::vector<std::string>{"header", "one"});
    CHECK(testing::read_lines(dir / "a.log") == std::vector<std::string>{"header", "three"});

    mtalog::exim::SyncFile nowhere(dir / "no/such/dir/a.log", 0640, false, "");
    const auto error = nowhere.append("x\n");
    REQUIRE(error);
    CHECK(*error == "cannot open " + dir / "no/such/dir/a.log" + ": No such file or directory");
}

TEST_CASE("exim: a record a crash cut short at the end of the file is ended, reported once, not joined",
          "[exim][files]")
{
    testing::TempDir dir;
    testing::write_file(dir / "a.log", "whole\npartial rec");
    mtalog::exim::SyncFile file(dir / "a.log", 0640, false, "header");
    const auto note = file.append("one\n"); // written, and the fragment reported with it
    REQUIRE(note);
    CHECK(note->find(" ended in 11 bytes of a record a crash cut short") != std::string::npos);
    CHECK(note->find("it began: partial rec (the record was written)") != std::string::npos);
    CHECK_FALSE(file.append("two\n"));
    CHECK(testing::read_lines(dir / "a.log") == std::vector<std::string>{"whole", "partial rec", "one", "two"});
    // Through the real entry point: the note fails the expansion once (Exim
    // logs it), the record is in the file, on a line of its own.
    testing::write_file(dir / "m.ec", "1700000000@cut sho");
    testing::write_file(dir / "mtalog.conf", "mtalog { mainlog = \"" + dir / "m.ec" + "\" }\n");
    const EximEntry exim;
    std::string yield;
    CHECK(exim.call(event(dir / "mtalog.conf", "tcp:connect", "1xUx4h-0002Mt-2o"), &yield) == 3);
    CHECK(yield.find("a record a crash cut short") != std::string::npos);
    CHECK(exim.call(event(dir / "mtalog.conf", "tcp:connect", "1xUx4h-0002Mt-2p")) == 0);
    const auto lines = testing::read_lines(dir / "m.ec");
    REQUIRE(lines.size() == 3);
    CHECK(lines[0] == "1700000000@cut sho");
    CHECK(lines[1].find("1xUx4h-0002Mt-2o") != std::string::npos);
    CHECK(lines[2].find("1xUx4h-0002Mt-2p") != std::string::npos);
}

TEST_CASE("exim: delivery processes writing at once give whole lines and one CSV header", "[exim]")
{
    testing::TempDir dir;
    const std::string config = dir / "mtalog.conf";
    testing::write_file(config, "mtalog {\n  attempt_logfile = \"" + dir / "a.csv" + "\"\n  attempt_format = csv\n}\n");
    constexpr int kProcesses = 4, kRecords = 2000;
    std::vector<pid_t> children;
    for (int p = 0; p < kProcesses; ++p) {
        const pid_t pid = ::fork();
        REQUIRE(pid >= 0);
        if (pid == 0) {
            // Like an Exim delivery process: load, log, leave with _exit.
            EximEntry exim;
            int bad = 0;
            for (int i = 0; i < kRecords; ++i)
                bad += exim.call(event(config, "tcp:connect", "p" + std::to_string(p) + "-" + std::to_string(i),
                                       std::string(static_cast<std::size_t>(i % 300), 'x'))) != 0;
            ::_exit(bad == 0 ? 0 : 1);
        }
        children.push_back(pid);
    }
    for (pid_t pid : children) {
        int status = 0;
        REQUIRE(::waitpid(pid, &status, 0) == pid);
        CHECK(WIFEXITED(status));
        CHECK(WEXITSTATUS(status) == 0);
    }
    const auto lines = testing::read_lines(dir / "a.csv");
    REQUIRE(lines.size() == 1 + kProcesses * kRecords);
    CHECK(lines[0].rfind("type,timestamp,", 0) == 0);
    std::set<std::string> ids;
    for (std::size_t i = 1; i < lines.size(); ++i) {
        CHECK(lines[i].rfind("attempt,", 0) == 0);
        const auto start = lines[i].find('Z') + 2;
        ids.insert(lines[i].substr(start, lines[i].find(',', start) - start));
    }
    CHECK(ids.size() == static_cast<std::size_t>(kProcesses * kRecords));
}

TEST_CASE("exim: mtalog:message gives the next events of that message a protocol and headers for %p and %h",
          "[exim]")
{
    testing::TempDir dir;
    const std::string config = dir / "mtalog.conf";
    testing::write_file(config, "mtalog {\n  attempt_logfile = \"" + dir / "a.txt" +
                                    "\"\n  attempt_format = \"%i %p [%h{subject}] [%h{X-CAMPAIGN-ID}] [%h{From}] "
                                    "[%h{Missing}]\"\n  permanent_failure_logfile = \"" + dir / "p.txt" +
                                    "\"\n  permanent_failure_format = \"%i %p [%h{Subject}]\"\n}\n");
    EximEntry exim;
    std::string yield;
    const std::string id = "1xUx4h-0002Mt-2o";
    // Exim's $h_ keeps a folded header's line break; an empty value is a
    // missing header; an empty argument (a header left out) is skipped.
    CHECK(exim.call({config, "mtalog:message", id, "esmtps", "Subject:  Hello\n world \x01\xff",
                     "X-Campaign-ID:c7", "Missing: ", ""},
                    &yield) == 0);
    CHECK(yield.empty());
    CHECK(exim.call(event(config, "tcp:connect", id)) == 0);
    CHECK(exim.call({config, "mtalog:message", id, "", "From: <bounces@sender.example>"}) == 0); // adds one
    for (int i = 0; i < 1000; ++i) // the same name again replaces its value, however often
        CHECK(exim.call({config, "mtalog:message", id, "", "x-campaign-id: c" + std::to_string(i)}) == 0);
    CHECK(exim.call(event(config, "msg:fail:delivery", id, "550 no")) == 0);
    CHECK(exim.call(event(config, "tcp:connect", id)) == 0);
    CHECK(exim.call(event(config, "tcp:connect", "1xUx4h-0002Mt-2p")) == 0); // another message: nothing
    CHECK(exim.call({config, "mtalog:message", "1xUx4h-0002Mt-2q", "esmtp"}) == 0); // forgets the last one's
    CHECK(exim.call(event(config, "tcp:connect", id)) == 0);
    CHECK(testing::read_lines(dir / "a.txt") ==
          std::vector<std::string>{id + " esmtps [Hello world \\x01\\xff] [c7] [] []",
                                   id + " esmtps [Hello world \\x01\\xff] [c999] [<bounces@sender.example>] []",
                                   "1xUx4h-0002Mt-2p  [] [] [] []", id + "  [] [] [] []"});
    CHECK(testing::read_lines(dir / "p.txt") == std::vector<std::string>{id + " esmtps [Hello world \\x01\\xff]"});
}

TEST_CASE("exim: a mtalog:message argument that is not 'Name: value' fails the expansion, naming it, and "
          "changes nothing",
          "[exim]")
{
    testing::TempDir dir;
    const std::string config = dir / "mtalog.conf";
    testing::write_file(config, "mtalog {\n  attempt_logfile = \"" + dir / "a.txt" +
                                    "\"\n  attempt_format = \"%i %p %h{Subject}\"\n}\n");
    EximEntry exim;
    std::string yield;
    const std::string id = "1xUx4h-0002Mt-2o";
    CHECK(exim.call({config, "mtalog:message", id, "esmtps", "Subject: kept"}) == 0);
    // Refused calls keep nothing, and forget nothing (this one's message is another).
    CHECK(exim.call({config, "mtalog:message", "1xUx4h-0002Mt-2p", "smtp", "Subject: fine", "Subject Hello"},
                    &yield) == 3);
    CHECK(yield == "mtalog: mtalog:message argument 6 is not 'Name: value': 'Subject Hello'");
    CHECK(exim.call({config, "mtalog:message", id, "http", ": no\r\nname\xff"}, &yield) == 3);
    CHECK(yield == "mtalog: mtalog:message argument 5 is not 'Name: value': ': no??name?'");
    CHECK(exim.call(event(config, "tcp:connect", id)) == 0);
    CHECK(testing::read_lines(dir / "a.txt") == std::vector<std::string>{id + " esmtps kept"});
}

TEST_CASE("exim: with all 8 arguments, the pointers Exim counts past them are never read", "[exim]")
{
    // Exim 4.96's read_subs() leaves the 11th slot of a ${dlfunc}'s vector
    // unset when all 8 arguments are given, and counts argc up to the next
    // NULL on its stack: a real delivery crashed reading such a pointer.
    testing::TempDir dir;
    const std::string config = dir / "mtalog.conf";
    testing::write_file(config, "mtalog {\n  attempt_logfile = \"" + dir / "a.txt" +
                                    "\"\n  attempt_format = \"%i %p %h{Subject}\"\n}\n");
    EximEntry exim;
    const std::string id = "1aaaaa-000001-AA";
    std::string yield;
    CHECK(exim.call({config, "mtalog:message", id, "esmtp", "Subject: one", "From: a@b", "X-A: 1", "X-B: 2"}, &yield,
                    3) == 0);
    CHECK(exim.call(event(config, "tcp:connect", id), &yield, 3) == 0);
    CHECK(testing::read_lines(dir / "a.txt") == std::vector<std::string>{id + " esmtp one"});
}

TEST_CASE("exim: every documented ${dlfunc} passes at most the 8 arguments Exim allows", "[exim]")
{
    for (const char *section : {"exim-event-action", "exim-event-action-message"}) {
        const std::string text = testing::generated_section("docs/exim.md", section);
        REQUIRE(text.find("${dlfunc") != std::string::npos);
        std::size_t calls = 0;
        for (auto at = text.find("${dlfunc"); at != std::string::npos; at = text.find("${dlfunc", at + 1)) {
            // Count the brace groups at the top level of this ${dlfunc...}:
            // file, function and the arguments.
            int depth = 0, groups = 0;
            for (std::size_t i = at + 2; i < text.size(); ++i) {
                if (text[i] == '{' && depth++ == 0)
                    ++groups;
                else if (text[i] == '}' && --depth < 0)
                    break;
            }
            INFO(section << ": ${dlfunc at " << at);
            CHECK(groups >= 4);
            CHECK(groups <= 2 + 8);
            ++calls;
        }
        CHECK(calls == (std::string(section) == "exim-event-action" ? 1u : 2u));
    }
}

TEST_CASE("exim: the documented mtalog config line works as it stands", "[exim]")
{
    std::string conf = testing::generated_section("docs/exim.md", "exim-mtalog-conf");
    const std::string readme_path = "/var/log/exim4/mtalog.ec";
    REQUIRE(conf.rfind("```\n", 0) == 0);
    conf = conf.substr(4, conf.rfind("```") - 4);
    REQUIRE(conf.find(readme_path) != std::string::npos);
    testing::TempDir dir;
    conf.replace(conf.find(readme_path), readme_path.size(), dir / "mtalog.ec");
    testing::write_file(dir / "mtalog.conf", conf);
    EximEntry exim;
    std::string yield;
    CHECK(exim.call(event(dir / "mtalog.conf", "tcp:connect", "1xUx4h-0002Mt-2o"), &yield) == 0);
    CHECK(yield.empty());
    CHECK(testing::read_lines(dir / "mtalog.ec").size() == 1);
}

TEST_CASE("exim: a CSV header the full disk refused is written before the first record once space returns",
          "[exim]")
{
    testing::TempDir dir;
    testing::SmallFilesystem small(dir, "size=256k");
    if (!small.usable())
        return;
    testing::SmallFilesystem::fill(small / "filler");
    mtalog::exim::SyncFile file(small / "a.csv", 0640, false, "type,timestamp");
    CHECK(file.append("one\n").has_value()); // the disk is full: neither header nor record
    fs::remove(small / "filler");
    CHECK_FALSE(file.append("two\n").has_value());
    CHECK(testing::read_lines(small / "a.csv") == std::vector<std::string>{"type,timestamp", "two"});
}

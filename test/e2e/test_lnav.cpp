// The lnav formats in config/lnav/ read what mtalog writes: a real lnav
// (Debian's 0.11), headless, loads them over a generated run plus hostile
// notes, in mainlog and in JSON, and its SQL answers (records per type,
// bounces per domain, connection failures per flag) match the files as this
// test reads them itself.
#include <catch2/catch.hpp>

#include <filesystem>
#include <map>
#include <sstream>

#include <nlohmann/json.hpp>

#include "file_checks.hpp"

namespace fs = std::filesystem;

namespace {

using Counts = std::map<std::string, long long>;

// lnav -n -q with the repository's formats, HOME in the test directory; the
// query's result as CSV, first column -> second.
Counts lnav_query(const testing::TempDir &dir, const std::string &file, const std::string &sql)
{
    const std::string config = dir / "lnav-config", formats = config + "/formats/mtalog";
    fs::create_directories(formats);
    for (const char *name : {"mtalog_mainlog.json", "mtalog_json.json"})
        fs::copy_file(testing::source_dir() + "/config/lnav/" + name, formats + "/" + name,
                      fs::copy_options::overwrite_existing);
    const auto r = testing::run_command({"/usr/bin/env", "HOME=" + dir / "home", "/usr/bin/lnav", "-n", "-q", "-I", config,
                                         "-c", ";" + sql, "-c", ":write-csv-to -", file},
                                        dir.path()); // lnav makes directories where it runs
    INFO("lnav said: " << r.out << r.err);
    REQUIRE(r.status == 0);
    REQUIRE(r.err.empty()); // no format warning or SQL error
    Counts out;
    std::istringstream in(r.out);
    std::string line;
    std::getline(in, line); // the header
    while (std::getline(in, line)) {
        const auto comma = line.rfind(',');
        REQUIRE(comma != std::string::npos);
        out[line.substr(0, comma)] = std::stoll(line.substr(comma + 1));
    }
    return out;
}

// What the files say, read here without lnav.
struct Expected {
    Counts per_type, bounces_per_domain, failures_per_flag, per_class_and_domain;
    long long lines = 0;
};

Expected read_mainlog(const std::string &path)
{
    Expected e;
    for (const auto &line : testing::read_lines(path)) {
        ++e.lines;
        std::vector<std::string> f;
        std::size_t start = 0;
        for (int i = 0; i < 13; ++i) { // A and P: 13 '@' before the note; C: 11 before the flags
            const auto at = line.find('@', start);
            if (at == std::string::npos)
                break;
            f.push_back(line.substr(start, at - start));
            start = at + 1;
        }
        f.push_back(line.substr(start));
        REQUIRE(f.size() >= 12);
        const std::string &type = f[4];
        ++e.per_type[type];
        if (type == "P")
            ++e.bounces_per_domain[f[5]];
        if (type == "C") {
            std::istringstream flags(f[11]);
            for (std::string flag; std::getline(flags, flag, '|');)
                if (flag.rfind("CONN_", 0) == 0)
                    ++e.failures_per_flag[flag];
        }
    }
    return e;
}

Expected read_json(const std::string &path)
{
    Expected e;
    for (const auto &line : testing::read_lines(path)) {
        ++e.lines;
        const auto j = nlohmann::json::parse(line);
        const std::string type = j.at("type");
        ++e.per_type[type];
        if (type == "permanent_failure" && j.contains("domain")) {
            ++e.bounces_per_domain[j.at("domain").get<std::string>()];
            if (j.contains("bounce"))
                ++e.per_class_and_domain[std::to_string(j.at("bounce").at("class").get<int>()) + " " +
                                         j.at("domain").get<std::string>()];
        }
        if (type == "connection_failure" && j.contains("error"))
            for (const auto &flag : j.at("error").at("flags"))
                if (flag.get<std::string>().rfind("CONN_", 0) == 0)
                    ++e.failures_per_flag[flag.get<std::string>()];
    }
    return e;
}

long long total(const Counts &c)
{
    long long n = 0;
    for (const auto &[key, count] : c)
        n += count;
    return n;
}

} // namespace

TEST_CASE("lnav reads mtalog's mainlog and JSON files, and its SQL agrees with the records", "[lnav]")
{
    testing::TempDir dir;
    const std::string mainlog = dir / "mainlog.ec", json = dir / "records.json", conf = dir / "mtacore.conf";
    testing::write_file(conf, "modules_path = \"" + testing::modules_dir() +
                                  "\"\nBinding_Group \"pool-a\" { Binding \"mta1\" { } Binding \"mta2\" { } }\n"
                                  "mtalog { mainlog = \"" + mainlog + "\" }\n"
                                  "mtalog \"j\" {\n  mainlog = \"" + json + "\"\n  attempt_format = json\n"
                                  "  connection_failure_format = json\n  permanent_failure_format = json\n}\n");
    const auto generated = testing::run_command(
        {testing::mtacore_exe(), "--config", conf, "--generate", "3000", "--threads", "2", "--seed", "7", "--quiet"});
    REQUIRE(generated.status == 0);
    // Hostile notes and domains: separators, quotes, escapes, control bytes,
    // a line separator, a would-be second record.
    const std::string hostile =
        R"({"hook":"permanent_failure","msg":{"id":"00/01-00002-5F000000"},"domain":"evil@example.com","note":"550 <a@b> \"quoted\" \\ back\nslash@@@@C@x"})" "\n"
        R"({"hook":"attempt","msg":{"id":"00/02-00002-5F000000"},"domain":"example.com","note":"451 tab\there \u2028 ctl\u0001 ,comma"})" "\n"
        R"({"hook":"permanent_failure","msg":{"id":"00/03-00002-5F000000"},"domain":"example.com","note":"1700000000@@@@C@fake line"})" "\n"
        R"({"hook":"connection_failure","addr":"192.0.2.9:25","err":["CONN_ERROR_CONNECT","CONN_ACTION_REQUEUE1"],"domain":"evil@example.com","binding_slot":1})" "\n";
    const auto replayed = testing::run_command({testing::mtacore_exe(), "--config", conf, "--replay", "-"}, "", hostile);
    INFO(replayed.err);
    REQUIRE(replayed.status == 0);

    SECTION("mainlog")
    {
        const Expected e = read_mainlog(mainlog);
        REQUIRE(e.lines == 3004);
        const auto per_type = lnav_query(dir, mainlog, "SELECT type, count(*) FROM mtalog_mainlog GROUP BY type");
        CHECK(per_type == e.per_type);
        CHECK(total(per_type) == e.lines); // every line recognised
        CHECK(lnav_query(dir, mainlog,
                         "SELECT log_level, count(*) FROM mtalog_mainlog GROUP BY log_level") ==
              Counts{{"error", e.per_type.at("P") + e.per_type.at("C")}, {"info", e.per_type.at("A")}});
        CHECK(lnav_query(dir, mainlog,
                         "SELECT domain, count(*) FROM mtalog_mainlog WHERE type = 'P' GROUP BY domain") ==
              e.bounces_per_domain);
        CHECK(e.bounces_per_domain.count("evil\\x40example.com") == 1);
        CHECK(lnav_query(dir, mainlog,
                         "SELECT rc.content, count(*) FROM mtalog_mainlog, regexp_capture(mtalog_mainlog.error_flags, "
                         "'(CONN_[A-Z0-9_]+)') AS rc WHERE type = 'C' AND rc.capture_index = 1 GROUP BY rc.content") ==
              e.failures_per_flag);
    }
    SECTION("json")
    {
        const Expected e = read_json(json);
        REQUIRE(e.lines == 3004);
        const auto per_type = lnav_query(dir, json, "SELECT type, count(*) FROM mtalog_json GROUP BY type");
        CHECK(per_type == e.per_type);
        CHECK(total(per_type) == e.lines);
        CHECK(lnav_query(dir, json,
                         "SELECT domain, count(*) FROM mtalog_json WHERE type = 'permanent_failure' GROUP BY domain") ==
              e.bounces_per_domain);
        CHECK(e.bounces_per_domain.count("evil@example.com") == 1);
        CHECK(lnav_query(dir, json,
                         "SELECT f.value, count(*) FROM mtalog_json, json_each(json_extract(log_raw_text, '$.error.flags')) AS f "
                         "WHERE mtalog_json.type = 'connection_failure' GROUP BY f.value") == e.failures_per_flag);
        // Bounces per class per domain: what an operator alerts on.
        REQUIRE(e.per_class_and_domain.size() >= 3);
        CHECK(lnav_query(dir, json,
                         "SELECT \"bounce/class\" || ' ' || domain, count(*) FROM mtalog_json "
                         "WHERE type = 'permanent_failure' AND \"bounce/class\" IS NOT NULL GROUP BY 1") ==
              e.per_class_and_domain);
    }
}

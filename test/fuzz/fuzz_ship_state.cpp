// mtalog-ship's state on arbitrary bytes: cursor.json, tail's state file and
// record ids (the Nats-Msg-Id every reader de-duplicates by). The first byte
// picks one. Whatever loads saves and loads again to the same thing; an id
// that parses formats back to itself.
#include <cstddef>
#include <cstdint>
#include <string>

#include "cursor.hpp"
#include "fuzz_ship_files.hpp"
#include "record_id.hpp"
#include "tail_state.hpp"

namespace {

void cursor(const std::string &text)
{
    auto loaded = mtalog::ship::load_cursor(fuzzing::as_file(text, ".cursor"));
    auto *c = std::get_if<mtalog::ship::Cursor>(&loaded);
    if (c == nullptr)
        return;
    const std::string again = fuzzing::as_file("", ".cursor2");
    fuzzing::expect(!mtalog::ship::save_cursor(*c, again).has_value(), "a loaded cursor cannot be saved");
    auto reloaded = mtalog::ship::load_cursor(again);
    auto *d = std::get_if<mtalog::ship::Cursor>(&reloaded);
    fuzzing::expect(d != nullptr, "a saved cursor does not load");
    fuzzing::expect(d->files.size() == c->files.size() && d->node == c->node, "a cursor changed on its way round");
}

void tail_state(const std::string &text)
{
    auto loaded = mtalog::ship::TailState::load(fuzzing::as_file(text, ".tail"));
    auto *t = std::get_if<mtalog::ship::TailState>(&loaded);
    if (t == nullptr)
        return;
    const std::string again = fuzzing::as_file("", ".tail2");
    fuzzing::expect(!t->save(again).has_value(), "a loaded tail state cannot be saved");
    auto reloaded = mtalog::ship::TailState::load(again);
    auto *u = std::get_if<mtalog::ship::TailState>(&reloaded);
    fuzzing::expect(u != nullptr && u->keys() == t->keys(), "a tail state changed on its way round");
}

void record_id(const std::string &text)
{
    mtalog::ship::RecordId id;
    std::string_view node;
    if (!mtalog::ship::parse_id(text, id, &node))
        return;
    std::string out(node.size() + 40, '\0');
    out.resize(mtalog::ship::format_id(out.data(), node, id));
    fuzzing::expect(out == text, "an id does not format back to itself");
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t *data, std::size_t size)
{
    if (size == 0)
        return 0;
    const std::string text(reinterpret_cast<const char *>(data) + 1, size - 1);
    switch (data[0] % 3) {
    case 0: cursor(text); break;
    case 1: tail_state(text); break;
    default: record_id(text); break;
    }
    return 0;
}

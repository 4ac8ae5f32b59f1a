#include "file_identity.hpp"

#include <algorithm>
#include <set>

namespace mtalog::ship {

std::uint64_t generation_key(std::uint64_t canonical, unsigned generation)
{
    if (generation <= 1)
        return canonical;
    return fnv1a("#" + std::to_string(generation), canonical) | 1;
}

namespace {

constexpr std::size_t kIdsKept = 4;

// One file in one or two forms (plain and compressed, during compression).
struct Unit {
    std::vector<Candidate *> forms;
    std::uint64_t canonical = 0;

    [[nodiscard]] const std::string &head() const
    {
        const Candidate *best = forms.front();
        for (const Candidate *c : forms)
            if (!c->incomplete && c->head.size() > best->head.size())
                best = c;
        return best->head;
    }
    [[nodiscard]] bool complete() const
    {
        return std::any_of(forms.begin(), forms.end(), [](const Candidate *c) { return !c->incomplete && !c->unreadable; });
    }
    [[nodiscard]] bool has_identity_of(const FileEntry &e) const
    {
        for (const Candidate *c : forms)
            if (std::find(e.ids.begin(), e.ids.end(), c->file_id()) != e.ids.end())
                return true;
        return false;
    }
};

std::string stem(const Candidate &c)
{
    if (c.encoding == Encoding::plain)
        return c.name;
    return c.name.substr(0, c.name.rfind('.'));
}

// Whether the unit may be the file the entry describes: its start matches
// the recorded one (a file only grows, so the same file is never shorter).
bool consistent(const Unit &u, const FileEntry &e)
{
    if (e.fp_len == 0)
        return true;
    const std::string &head = u.head();
    if (head.size() < e.fp_len)
        return !u.complete(); // an unreadable or partial copy cannot tell
    return fnv1a(std::string_view(head).substr(0, e.fp_len)) == e.fp_hash;
}

void remember(const Unit &u, FileEntry &e)
{
    for (const Candidate *c : u.forms) {
        if (c->unreadable)
            continue;
        const FileId id = c->file_id();
        std::erase(e.ids, id);
        e.ids.push_back(id);
    }
    while (e.ids.size() > kIdsKept)
        e.ids.erase(e.ids.begin());
    // The recorded start grows with the file, up to kHeadBytes.
    const std::string &head = u.head();
    if (u.complete() && head.size() > e.fp_len) {
        e.fp_len = head.size();
        e.fp_hash = fnv1a(head);
    }
    e.missed = 0;
}

} // namespace

std::vector<std::string> resolve_keys(std::vector<Candidate> &candidates, std::map<std::uint64_t, FileEntry> &files,
                                      const std::string &path)
{
    std::vector<std::string> notes;
    // Units, oldest first (candidates come oldest first).
    std::vector<Unit> units;
    for (Candidate &c : candidates) {
        c.key = 0;
        Unit *pair = nullptr;
        for (Unit &u : units)
            for (const Candidate *f : u.forms)
                if (f->encoding != c.encoding && stem(*f) == stem(c) && (f->canonical == c.canonical || f->unreadable ||
                                                                         c.unreadable))
                    pair = &u;
        if (pair) {
            pair->forms.push_back(&c);
            pair->canonical = pair->canonical ? pair->canonical : c.canonical;
        } else {
            units.push_back(Unit{{&c}, c.canonical});
        }
    }
    std::set<std::uint64_t> taken;
    const auto entries_of = [&](std::uint64_t canonical) {
        std::vector<std::pair<std::uint64_t, FileEntry *>> out;
        for (auto &[key, e] : files)
            if (e.canonical == canonical)
                out.emplace_back(key, &e);
        std::sort(out.begin(), out.end(),
                  [](const auto &a, const auto &b) { return a.second->generation < b.second->generation; });
        return out;
    };
    const auto assign = [&](const Unit &u, std::uint64_t key, FileEntry &e) {
        taken.insert(key);
        for (Candidate *c : u.forms) {
            c->key = key;
            c->new_form = std::find(e.ids.begin(), e.ids.end(), c->file_id()) == e.ids.end();
        }
        remember(u, e);
    };
    // 1. By identity: a file keeps its key while it grows and is renamed.
    for (Unit &u : units) {
        if (u.canonical == 0) {
            // Unreadable: only its identity can name its key.
            for (auto &[key, e] : files)
                if (!taken.count(key) && u.has_identity_of(e)) {
                    taken.insert(key);
                    for (Candidate *c : u.forms)
                        c->key = key;
                }
            continue;
        }
        for (auto &[key, e] : entries_of(u.canonical))
            if (!taken.count(key) && u.has_identity_of(*e) && consistent(u, *e)) {
                assign(u, key, *e);
                break;
            }
    }
    // 2. By content: a compressed copy, or files in a moved directory.
    for (Unit &u : units) {
        if (u.canonical == 0 || u.forms.front()->key != 0)
            continue;
        for (auto &[key, e] : entries_of(u.canonical))
            if (!taken.count(key) && consistent(u, *e)) {
                assign(u, key, *e);
                break;
            }
    }
    // 3. New files; a file that begins like a known one but is not it gets
    // the next generation, unless it is a copy of a file listed beside it
    // (same size, same start): that would ship its records twice.
    for (Unit &u : units) {
        if (u.canonical == 0 || u.forms.front()->key != 0 || !u.complete())
            continue;
        const Candidate *copied = nullptr;
        for (const Unit &o : units)
            for (const Candidate *f : o.forms)
                for (const Candidate *c : u.forms)
                    if (&o != &u && f->key != 0 && f->encoding == c->encoding && f->size == c->size &&
                        f->head == c->head)
                        copied = f;
        if (copied) {
            for (Candidate *c : u.forms)
                c->copy_of = copied->name;
            continue;
        }
        const auto known = entries_of(u.canonical);
        unsigned generation = 1;
        for (const auto &[key, e] : known)
            generation = std::max(generation, e->generation + 1);
        const std::uint64_t key = generation_key(u.canonical, generation);
        FileEntry &e = files[key];
        e.path = path;
        e.canonical = u.canonical;
        e.generation = generation;
        assign(u, key, e);
        if (generation > 1)
            notes.push_back("\"" + u.forms.front()->name + "\" begins with the same record as another file of \"" +
                            path + "\" but is another file: shipped as a file of its own (generation " +
                            std::to_string(generation) + ")");
    }
    return notes;
}

} // namespace mtalog::ship

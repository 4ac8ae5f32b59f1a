// Which file key a listed file has. A key names a file's records in every
// form of the file (the live file, renamed, compressed) and wherever its
// directory is: it is the canonical key (a hash of the log's base name and
// the file's first record line). Two different files can begin with the same
// record (a connection-failure storm in whole-second mainlog lines, a
// template without a time): the later one then gets a key of its own (a
// new generation), told apart by
//   - its identity (device, inode), remembered per key, and
//   - the hash of its first 4 KiB, remembered per key: a file that differs
//     from a key's recorded start, or is shorter than it, is another file.
// A plain file and its compressed copy (name.1 and name.1.gz) are one file.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "cursor.hpp"
#include "spool.hpp"

namespace mtalog::ship {

// Sets `key` on every candidate of one log (configured path `path`),
// creating cursor entries for files seen the first time and remembering
// identities and starts. Returns one message per file given a generation of
// its own. An incomplete compressed file never starts a generation (it is
// one being written: its plain original is still there), nor does an
// unreadable one; those get key 0 when nothing matches. A file that is a
// copy of another listed beside it (same encoding, size and start) gets key
// 0 and `copy_of`.
std::vector<std::string> resolve_keys(std::vector<Candidate> &candidates, std::map<std::uint64_t, FileEntry> &files,
                                      const std::string &path);

// The key of generation `generation` of canonical key `canonical`.
[[nodiscard]] std::uint64_t generation_key(std::uint64_t canonical, unsigned generation);

} // namespace mtalog::ship

// Built-in rotation: names, schedule and retention.
//
// A rotated file is named <path>.<YYYYmmdd-HHMMSS>[-N][.gz|.zst]: the time of
// the rotation (UTC or local, per rotate_clock), -N when several rotations
// fall in one second, and the compressor's extension. Names sort by age.
// Retention only ever deletes files that match this pattern exactly.
#pragma once

#include <ctime>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "mtalog_options.hpp"

namespace mtalog {

// The name for a rotation at `when`; `n` > 0 appends -n.
std::string rotated_name(const std::string &path, std::time_t when, bool utc, unsigned n);

// Whether `filename` (no directory) is a rotated file of `base` (the log
// file's own file name): base.YYYYmmdd-HHMMSS, optional -N, optional .gz/.zst.
bool is_rotated_name(std::string_view filename, std::string_view base);

// Rotated files of `path`, oldest first.
std::vector<std::string> rotated_files(const std::string &path);

// Deletes the oldest rotations of `path` beyond `keep` (0: keep all): a
// rotation is one file in any of its forms (X and X.gz while X is being
// compressed count once, and go together). Files in `busy` (queued for
// compression) are not deleted. Returns the paths it deleted.
std::vector<std::string> apply_retention(const std::string &path, std::size_t keep,
                                         const std::set<std::string> &busy = {});

// The first hour or day boundary after `now` (UTC or local); 0 for none.
std::time_t next_rotation_time(std::time_t now, mtacfg::RotateInterval interval, bool utc);

} // namespace mtalog

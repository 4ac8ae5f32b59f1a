// mtalog-ship's readers of compressed files on arbitrary (cut, corrupted)
// bytes: gzip or zstd by the first byte. A read ends or fails, never
// crashes; position() counts what was read; reading again from a position
// gives the same bytes (a seek back decodes again from the start).
#include <cstddef>
#include <cstdint>
#include <string>

#include "fuzz_ship_files.hpp"
#include "readers.hpp"

namespace {

constexpr std::size_t kMaxDecoded = 1 << 20; // a small input may expand a lot

// Reads to the end (or kMaxDecoded) from `base`; false when a read failed.
bool read_all(mtalog::ship::Reader &r, std::uint64_t base, std::string &out)
{
    char buf[4096];
    while (out.size() < kMaxDecoded) {
        const long n = r.read(buf, sizeof buf);
        if (n < 0)
            return false;
        if (n == 0)
            return true;
        fuzzing::expect(static_cast<std::size_t>(n) <= sizeof buf, "a read past its buffer");
        out.append(buf, static_cast<std::size_t>(n));
        fuzzing::expect(r.position() == base + out.size(), "position() is not what was read");
    }
    return true;
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t *data, std::size_t size)
{
    if (size == 0)
        return 0;
    const bool gzip = data[0] % 2 == 0;
    const std::string path = fuzzing::as_file(std::string_view(reinterpret_cast<const char *>(data) + 1, size - 1),
                                              gzip ? ".gz" : ".zst");
    const auto encoding = gzip ? mtalog::ship::Encoding::gzip : mtalog::ship::Encoding::zstd;
    std::string error;
    auto reader = mtalog::ship::open_reader(path, encoding, error);
    if (!reader)
        return 0;
    std::string first;
    if (!read_all(*reader, 0, first) || first.empty())
        return 0;
    (void)reader->truncated();
    const std::uint64_t middle = first.size() / 2;
    fuzzing::expect(reader->seek(middle), "cannot seek back into what was read");
    std::string second;
    if (read_all(*reader, middle, second))
        fuzzing::expect(first.compare(middle, std::string::npos, second, 0, first.size() - middle) == 0,
                        "reading again from a position gives other bytes");
    return 0;
}

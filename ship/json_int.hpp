// An integer read from a state file's JSON. nlohmann converts a JSON number
// with a fraction or exponent to an integer with a cast, undefined when the
// value is out of range (a cursor saying 1.7e24 was found by fuzzing), and
// a negative one to an unsigned type by wrapping: here only an integer that
// T holds is taken, anything else throws, and the file is refused as
// corrupt like any other malformed state.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <utility>

namespace mtalog::ship {

template <typename T>
T json_int(const nlohmann::json &v)
{
    if (v.is_number_unsigned()) {
        if (const auto u = v.get<std::uint64_t>(); std::in_range<T>(u))
            return static_cast<T>(u);
    } else if (v.is_number_integer()) {
        if (const auto i = v.get<std::int64_t>(); std::in_range<T>(i))
            return static_cast<T>(i);
    } else {
        throw std::invalid_argument("expected an integer, found " + std::string(v.type_name()));
    }
    throw std::out_of_range("integer out of range: " + v.dump());
}

} // namespace mtalog::ship

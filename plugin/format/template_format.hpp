// custom_logger-style %-templates, compiled once at config time into a list
// of items (literal text or a macro with its argument) and evaluated per
// record without parsing anything. Macros are matched longest-first against
// the table in template_format.cpp; `%%` is a literal percent sign. Text
// from records passes the shared text layer (escape.hpp).
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "fields.hpp"

namespace mtalog {

struct TemplateError {
    std::size_t offset = 0; // into the template text
    std::string message;
};

enum class MacroArg { none, optional_braces, required_braces, decimals_required, decimals_optional };

// A macro's own writer; `arg` is the text in braces ("" without), `decimals`
// its number for the decimals kinds.
using MacroWriter = void (*)(const Record &r, const FormatContext &ctx, Buffer &out, const std::string &arg,
                             int decimals);

// A macro either shows a field of kFields exactly as JSON and CSV do (its
// kinds are the field's) or has its own writer.
struct MacroInfo {
    std::string_view name;
    MacroArg arg;
    KindMask kinds;
    std::string_view meaning;
    const FieldInfo *field = nullptr;
    MacroWriter write = nullptr;
};

// Every macro, for documentation and for the compiler.
const std::vector<MacroInfo> &template_macros();

class CompiledTemplate {
public:
    // Compiles `text` for records of `kind`; a macro that means nothing for
    // that kind is an error, like an unknown one.
    // `classes`: whether the instance classifies bounces (without, `%C` and
    // `%c` are refused).
    static std::variant<CompiledTemplate, TemplateError> compile(std::string_view text, RecordKind kind,
                                                                 bool classes = true);

    void format(const Record &record, const FormatContext &ctx, Buffer &out) const;
    [[nodiscard]] std::size_t item_count() const noexcept { return items_.size(); }

private:
    // The literal text before a macro, then the macro: one step per macro.
    // A literal longer than kRoom is cut into steps of its own.
    enum class Step : unsigned char { literal, field, seconds, own };
    struct Item {
        static constexpr std::size_t kRoom = 16;
        // The literal before the macro, padded to kRoom bytes: copied in one
        // fixed-size move instead of a call to memcpy.
        char padded[kRoom] = {};
        unsigned char length = 0;  // of the literal, at most kRoom
        Step step = Step::literal; // what follows the literal (seconds: %t)
        Field field = Field::type; // Step::field: the field the macro shows
        MacroWriter own = nullptr; // Step::own: the macro's own writer
        std::string text;          // the macro's argument
        int number = 0;            // decimals, for %us{N} and %T{N}
    };
    std::vector<Item> items_;
};

} // namespace mtalog

#include "formatter.hpp"

#include "csv_format.hpp"
#include "json_format.hpp"
#include "mainlog_format.hpp"

namespace mtalog {

namespace {

template <void (*Format)(const Record &, const FormatContext &, Buffer &)>
class NamedFormatter final : public Formatter {
public:
    explicit NamedFormatter(std::string header = {}) : header_(std::move(header)) {}
    void format(const Record &record, const FormatContext &ctx, Buffer &out) const override
    {
        Format(record, ctx, out);
    }
    [[nodiscard]] std::string header() const override { return header_; }

private:
    std::string header_;
};

class TemplateFormatter final : public Formatter {
public:
    std::array<std::optional<CompiledTemplate>, mtacfg::kRecordKinds> per_kind;

    void format(const Record &record, const FormatContext &ctx, Buffer &out) const override
    {
        const auto &compiled = per_kind[static_cast<std::size_t>(record.kind)];
        if (compiled.has_value())
            compiled->format(record, ctx, out);
    }
};

} // namespace

std::variant<std::unique_ptr<Formatter>, FormatterError> make_formatter(const mtacfg::FormatSpec &spec,
                                                                        KindMask kinds)
{
    switch (spec.kind) {
    case mtacfg::FormatKind::mainlog: return std::make_unique<NamedFormatter<format_mainlog>>();
    case mtacfg::FormatKind::json: return std::make_unique<NamedFormatter<format_json>>();
    case mtacfg::FormatKind::csv: return std::make_unique<NamedFormatter<format_csv>>(csv_header());
    case mtacfg::FormatKind::custom: break;
    }
    auto formatter = std::make_unique<TemplateFormatter>();
    for (mtacfg::RecordKind kind : mtacfg::kAllRecordKinds) {
        if ((kinds & kind_bit(kind)) == 0)
            continue;
        auto compiled = CompiledTemplate::compile(spec.template_text, kind);
        if (auto *error = std::get_if<TemplateError>(&compiled))
            return FormatterError{kind, std::move(*error)};
        formatter->per_kind[static_cast<std::size_t>(kind)] = std::move(std::get<CompiledTemplate>(compiled));
    }
    return formatter;
}

} // namespace mtalog

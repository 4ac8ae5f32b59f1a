#include "formatter.hpp"

#include "csv_format.hpp"
#include "field_writers.hpp"
#include "json_format.hpp"
#include "mainlog_format.hpp"
#include "parser.hpp"

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

std::variant<std::unique_ptr<Formatter>, FormatterError> make_formatter(const mtacfg::FormatSpec &spec, bool classes,
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
        auto compiled = CompiledTemplate::compile(spec.template_text, kind, classes);
        if (auto *error = std::get_if<TemplateError>(&compiled))
            return FormatterError{kind, std::move(*error)};
        formatter->per_kind[static_cast<std::size_t>(kind)] = std::move(std::get<CompiledTemplate>(compiled));
    }
    return formatter;
}

std::variant<std::vector<std::unique_ptr<Formatter>>, std::string> make_formatters(const mtacfg::Settings &settings)
{
    std::vector<std::unique_ptr<Formatter>> formatters;
    for (std::size_t index = 0; index < settings.files.size(); ++index) {
        KindMask kinds = 0;
        for (mtacfg::RecordKind kind : mtacfg::kAllRecordKinds)
            if (settings.file_of[static_cast<std::size_t>(kind)] == index)
                kinds |= kind_bit(kind);
        auto made = make_formatter(settings.files[index].format, settings.bounce_classes, kinds);
        if (auto *failure = std::get_if<FormatterError>(&made)) {
            // Point at the offending spot inside the <kind>_format value.
            const mtacfg::Location at = mtacfg::value_location(
                settings.records[static_cast<std::size_t>(failure->kind)].format_where, failure->error.offset);
            return mtacfg::ConfigError{at, std::string(mtacfg::record_name(failure->kind)) + "_format: " +
                                               failure->error.message}
                .render();
        }
        formatters.push_back(std::move(std::get<std::unique_ptr<Formatter>>(made)));
    }
    return formatters;
}

void cache_binding_texts(FormatContext &ctx, int slots)
{
    ctx.slot_names.assign(static_cast<std::size_t>(slots), {});
    for (int slot = 0; slot < slots; ++slot) {
        const BindingNames names = binding_names(ctx, slot);
        if (names.group != nullptr || names.name != nullptr)
            ctx.slot_names[static_cast<std::size_t>(slot)] = {true, names.group, names.name};
    }
    ctx.mainlog_bindings = mainlog_binding_texts(ctx, slots);
    ctx.json_bindings = json_binding_texts(ctx, slots);
    ctx.csv_bindings = csv_binding_texts(ctx, slots);
    ctx.group_texts = binding_texts(ctx, slots, field_writers::put_group_text);
    ctx.name_texts = binding_texts(ctx, slots, field_writers::put_name_text);
}

} // namespace mtalog

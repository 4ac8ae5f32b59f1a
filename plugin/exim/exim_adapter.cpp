#include "exim_adapter.hpp"

#include <algorithm>
#include <arpa/inet.h>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <map>
#include <netinet/in.h>
#include <sys/time.h>

#include "bounce_rules.hpp"
#include "parser.hpp"
#include "record.hpp"
#include "sync_file.hpp"

namespace mtalog::exim {

namespace {

// Exim's own negative errno values (its macros.h), for the ones that say
// something about reaching the host.
constexpr int kEximUnknownHost = -32;
constexpr int kEximDnsDefer = -36;
constexpr int kEximConnectTimeout = -43;

template <typename T> std::optional<T> number(std::string_view text)
{
    T value{};
    const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (ec != std::errc{} || end != text.data() + text.size() || text.empty())
        return std::nullopt;
    return value;
}

// "$host_address $host_port $host": the name may be empty (or, in theory,
// hold spaces), so the address and port are the first two words.
struct Host {
    std::string address;
    std::optional<unsigned> port;
    std::string name;
};

Host split_host(std::string_view text)
{
    Host h;
    const auto first = text.find(' ');
    h.address = std::string(text.substr(0, first));
    if (first == std::string_view::npos)
        return h;
    text.remove_prefix(first + 1);
    const auto second = text.find(' ');
    h.port = number<unsigned>(text.substr(0, second));
    if (second != std::string_view::npos)
        h.name = std::string(text.substr(second + 1));
    return h;
}

// The peer as a sockaddr, when the address is an IP and the port a port
// (Exim has reset $host_port to 0 by msg:fail:delivery: the address then
// stays in remote_ip only).
bool peer_sockaddr(const Host &h, sockaddr_storage &out)
{
    std::memset(&out, 0, sizeof out);
    const unsigned port = h.port.value_or(0);
    if (port == 0 || port > 65535)
        return false;
    auto *v4 = reinterpret_cast<sockaddr_in *>(&out);
    if (::inet_pton(AF_INET, h.address.c_str(), &v4->sin_addr) == 1) {
        v4->sin_family = AF_INET;
        v4->sin_port = htons(static_cast<std::uint16_t>(port));
        return true;
    }
    auto *v6 = reinterpret_cast<sockaddr_in6 *>(&out);
    if (::inet_pton(AF_INET6, h.address.c_str(), &v6->sin6_addr) == 1) {
        v6->sin6_family = AF_INET6;
        v6->sin6_port = htons(static_cast<std::uint16_t>(port));
        return true;
    }
    return false;
}

// A header value as the ABI gives it: unfolded (a line break before a blank
// goes; Exim's $h_ keeps a folded header's breaks, as bare LFs or CRLFs) and
// without the blanks after the colon.
std::string unfolded(std::string_view v)
{
    std::string out;
    for (std::size_t k = 0; k < v.size(); ++k) {
        const std::size_t next = v[k] == '\n' ? k + 1 : v.substr(k, 2) == "\r\n" ? k + 2 : 0;
        if (next != 0 && next < v.size() && (v[next] == ' ' || v[next] == '\t')) {
            k = next - 1;
            continue;
        }
        if (!(out.empty() && (v[k] == ' ' || v[k] == '\t')))
            out += v[k];
    }
    return out;
}

// Options that need a long-lived writer (rotation, compression); Exim
// processes live for one delivery.
std::optional<std::string> refuse_unsupported(const mtacfg::Block &block, const mtacfg::Settings &s)
{
    auto where = [&](std::string_view name) {
        for (const auto &o : block.options)
            if (mtacfg::iequals(o.name, name))
                return o.where;
        return block.where;
    };
    auto refuse = [&](std::string_view name) {
        return mtacfg::ConfigError{where(name), std::string(name) +
                                                    " is not available with Exim (each delivery is its own short-lived "
                                                    "process): rotate with logrotate instead; mtalog reopens a file "
                                                    "when the inode at its path changes"}
            .render();
    };
    if (s.rotate_size != 0)
        return refuse("rotate_size");
    if (s.rotate_interval != mtacfg::RotateInterval::none)
        return refuse("rotate_interval");
    if (s.compress != mtacfg::Compression::none)
        return refuse("compress");
    return std::nullopt;
}

} // namespace

int conn_flags_for_errno(int err) noexcept
{
    int flags = CONN_ACTION_REQUEUE1;
    switch (err) {
    case ECONNREFUSED:
    case ECONNRESET:
    case ECONNABORTED: flags |= CONN_ERROR_CONNECT; break;
    case ETIMEDOUT:
    case kEximConnectTimeout: flags |= CONN_ERROR_CONNECT_TIMEOUT; break;
    case ENETUNREACH:
    case EHOSTUNREACH:
    case ENETDOWN:
    case EHOSTDOWN: flags |= CONN_ERROR_CONNECT_NETWORK; break;
    case EADDRNOTAVAIL:
    case EADDRINUSE: flags |= CONN_ERROR_BIND; break;
    case EMFILE:
    case ENFILE:
    case ENOBUFS:
    case EAFNOSUPPORT: flags |= CONN_ERROR_SOCKET; break;
    case kEximUnknownHost:
    case kEximDnsDefer: flags |= CONN_ERROR_MX_LOOKUP_FAILED; break;
    default: break; // an SMTP-level defer (4xx, TLS, ...): requeued, no connection error
    }
    return flags;
}

int stage_of_smtp_error(std::string_view text) noexcept
{
    static constexpr std::pair<std::string_view, int> kAfter[] = {
        {"after RCPT TO", EC_STAGE_AFTER_RCPT_TO},
        {"after MAIL FROM", EC_STAGE_AFTER_MAIL_FROM},
        {"after pipelined RCPT TO", EC_STAGE_AFTER_RCPT_TO},
        {"after pipelined MAIL FROM", EC_STAGE_AFTER_MAIL_FROM},
        {"after end of data", EC_STAGE_READING_CONFIRMATION},
        {"after pipelined end of data", EC_STAGE_READING_CONFIRMATION},
        {"after DATA", EC_STAGE_AFTER_DATA},
        {"after pipelined DATA", EC_STAGE_AFTER_DATA},
        {"after initial connection", EC_STAGE_BANNER},
        {"after EHLO", EC_STAGE_AFTER_EHLO},
        {"after HELO", EC_STAGE_AFTER_EHLO},
        {"after STARTTLS", EC_STAGE_AFTER_STARTTLS},
    };
    for (const auto &[phrase, stage] : kAfter)
        if (text.find(phrase) != std::string_view::npos)
            return stage;
    return EC_STAGE_UNKNOWN;
}

// --- Adapter ----------------------------------------------------------------

struct Adapter::Instance {
    mtacfg::Settings settings;
    std::vector<std::unique_ptr<Formatter>> formatters; // per settings.files entry
    std::vector<std::unique_ptr<SyncFile>> files;       // ditto
    std::shared_ptr<const BounceRules> bounce_rules;
};

Adapter::Adapter()
{
    core_.abi_version = EC_ABI_VERSION;
    core_.size = sizeof(ec_core);
    core_.core_private = this;
    core_.core_name = "exim";
    core_.message_id_text = &Adapter::message_id_text;
    core_.binding_lookup = &Adapter::binding_lookup;
    core_.message_protocol = &Adapter::message_protocol;
    core_.message_header = &Adapter::message_header;
    ctx_.core = &core_;
}

Adapter::~Adapter() = default;

std::size_t Adapter::message_id_text(ec_core *core, const message_id *id, char *buf, std::size_t buflen)
{
    const auto *self = static_cast<const Adapter *>(core->core_private);
    const bool set = id != nullptr && (id->slot != 0 || id->pid != 0 || id->counter != 0);
    const std::string_view text = set ? std::string_view(self->current_id_) : std::string_view();
    if (buf != nullptr && buflen > 0) {
        const std::size_t n = std::min(text.size(), buflen - 1);
        if (n > 0) // an empty view's data() may be NULL
            std::memcpy(buf, text.data(), n);
        buf[n] = '\0';
    }
    return text.size();
}

int Adapter::binding_lookup(ec_core *, int, const char **name, const char **group)
{
    // Exim has no bindings: every slot is unknown.
    *name = nullptr;
    *group = nullptr;
    return -1;
}

const Adapter *Adapter::remembered_for(ec_core *core, const ec_message *msg) noexcept
{
    const auto *self = static_cast<const Adapter *>(core->core_private);
    if (msg == nullptr || msg != self->current_msg_ || self->current_id_.empty() ||
        self->remembered_id_ != self->current_id_)
        return nullptr;
    return self;
}

const char *Adapter::message_protocol(ec_core *core, const ec_message *msg)
{
    const Adapter *self = remembered_for(core, msg);
    return self && !self->protocol_.empty() ? self->protocol_.c_str() : nullptr;
}

int Adapter::message_header(ec_core *core, const ec_message *msg, const char *name, const char **value,
                            std::size_t *value_len)
{
    *value = nullptr;
    *value_len = 0;
    const Adapter *self = remembered_for(core, msg);
    if (self == nullptr || name == nullptr)
        return -1;
    for (const auto &[n, v] : self->headers_)
        if (mtacfg::iequals(n, name)) {
            *value = v.data();
            *value_len = v.size();
            return 0;
        }
    return -1;
}

std::optional<std::string> Adapter::remember(std::string_view message_id, std::string_view protocol,
                                             const std::vector<std::string_view> &headers)
{
    // Every argument checked before any is kept: a refused call changes nothing.
    for (std::size_t i = 0; i < headers.size(); ++i) {
        const auto colon = headers[i].find(':');
        if (!headers[i].empty() && (colon == 0 || colon == std::string_view::npos)) {
            std::string shown(headers[i].substr(0, 64));
            for (char &c : shown) // Exim's logs get the message: printable ASCII only
                if (static_cast<unsigned char>(c) < 0x20 || static_cast<unsigned char>(c) >= 0x7f)
                    c = '?';
            return "mtalog:message argument " + std::to_string(i + 5) + " is not 'Name: value': '" + shown + "'";
        }
    }
    const std::string id(message_id.substr(0, EC_MESSAGE_ID_TEXT_MAX));
    if (id != remembered_id_) {
        remembered_id_ = id;
        protocol_.clear();
        headers_.clear();
    }
    if (!protocol.empty())
        protocol_.assign(protocol);
    for (const std::string_view text : headers) {
        if (text.empty())
            continue;
        const auto colon = text.find(':');
        // An empty value is no header: Exim's $h_ is empty for a missing one.
        std::string value = unfolded(text.substr(colon + 1));
        if (value.empty())
            continue;
        // The same name again (the line runs before every event of the
        // message) replaces its value: the list stays as long as the names.
        const std::string_view name = text.substr(0, colon);
        const auto known = std::find_if(headers_.begin(), headers_.end(),
                                        [&](const auto &h) { return mtacfg::iequals(h.first, name); });
        if (known != headers_.end())
            known->second = std::move(value);
        else
            headers_.emplace_back(std::string(name), std::move(value));
    }
    return std::nullopt;
}

std::variant<std::unique_ptr<Adapter>, std::string> Adapter::load(const std::string &config_path)
{
    auto parsed = mtacfg::parse_file(config_path);
    if (auto *error = std::get_if<mtacfg::ConfigError>(&parsed))
        return error->render();
    const auto &doc = std::get<mtacfg::Document>(parsed);
    if (!doc.options.empty()) {
        const auto &o = doc.options.front();
        return mtacfg::ConfigError{o.where, "'" + o.name + "' outside an mtalog stanza"}.render();
    }
    std::unique_ptr<Adapter> self(new Adapter());
    std::map<std::string, std::string> writers; // normalized path -> the stanza that writes it
    for (const auto &block : doc.blocks) {
        if (!mtacfg::iequals(block.kind, "mtalog"))
            return mtacfg::ConfigError{block.where, "'" + block.kind +
                                                        "' stanza in an mtalog config for Exim (only mtalog stanzas belong here)"}
                .render();
        auto validated = mtacfg::validate_mtalog(block.options, block.instance.value_or(""), block.where);
        if (auto *error = std::get_if<mtacfg::ConfigError>(&validated))
            return error->render();
        auto instance = std::make_unique<Instance>();
        instance->settings = std::get<mtacfg::Settings>(std::move(validated));
        if (!instance->settings.enabled)
            continue;
        if (auto error = refuse_unsupported(block, instance->settings))
            return *error;
        auto made = make_formatters(instance->settings);
        if (auto *error = std::get_if<std::string>(&made))
            return *error;
        instance->formatters = std::move(std::get<std::vector<std::unique_ptr<Formatter>>>(made));
        if (instance->settings.bounce_classes) {
            auto rules = BounceRules::load(instance->settings.bounce_rules, instance->settings.bounce_rules_where);
            if (auto *error = std::get_if<mtacfg::ConfigError>(&rules))
                return error->render();
            instance->bounce_rules = std::get<0>(std::move(rules));
        }
        for (std::size_t i = 0; i < instance->settings.files.size(); ++i) {
            const auto &spec = instance->settings.files[i];
            const std::string label = mtacfg::stanza_label(instance->settings.instance);
            const auto [other, fresh] = writers.emplace(mtacfg::normalize_path(spec.path), label);
            if (!fresh)
                return mtacfg::ConfigError{block.where, "log file \"" + spec.path + "\" is already written by " +
                                                            other->second + " (one stanza per file)"}
                    .render();
            instance->files.push_back(std::make_unique<SyncFile>(spec.path, spec.mode, spec.follow_symlinks,
                                                                 instance->formatters[i]->header()));
        }
        self->instances_.push_back(std::move(instance));
    }
    if (doc.blocks.empty())
        return config_path + ": no mtalog stanza";
    return self;
}

std::optional<std::string> Adapter::handle(const Event &event)
{
    RecordKind kind;
    if (event.name == "tcp:connect")
        kind = RecordKind::attempt;
    else if (event.name == "msg:host:defer")
        kind = RecordKind::connection_failure;
    else if (event.name == "msg:fail:delivery")
        kind = RecordKind::permanent_failure;
    else
        return std::nullopt; // an event mtalog has no record for

    current_id_.assign(event.message_id.substr(0, EC_MESSAGE_ID_TEXT_MAX));
    const Host host = split_host(event.host);
    const std::string recipient(event.recipient);
    const auto at = recipient.rfind('@');
    const std::string local = at == std::string::npos ? std::string() : recipient.substr(0, at);
    std::string domain = at == std::string::npos ? recipient : recipient.substr(at + 1);

    ec_message m{};
    if (!current_id_.empty())
        m.id = message_id{1, 0, 0}; // its text is current_id_ (message_id_text above)
    m.rcptto_local = local.empty() ? nullptr : local.c_str();
    m.rcptto_domain = domain.empty() ? nullptr : domain.c_str();
    m.size = number<std::uint64_t>(event.size).value_or(0);
    m.remote_ip = host.address.empty() ? nullptr : host.address.c_str();
    m.stage = kind == RecordKind::attempt ? EC_STAGE_NOT_CONNECTED : stage_of_smtp_error(event.data);
    domain_record dr{domain.empty() ? nullptr : domain.data(), 0, 0};
    sockaddr_storage peer{};

    Record r;
    r.kind = kind;
    ::gettimeofday(&r.now, nullptr);
    r.msg = &m;
    r.dr = &dr;
    r.addr = peer_sockaddr(host, peer) ? reinterpret_cast<const sockaddr *>(&peer) : nullptr;
    r.peer_host = host.name.empty() ? nullptr : host.name.c_str();
    if (kind == RecordKind::permanent_failure) {
        r.note = event.data;
        r.has_note = true;
    }
    if (kind == RecordKind::connection_failure) {
        r.os_errno = number<int>(event.defer_errno);
        r.err = conn_flags_for_errno(r.os_errno.value_or(0));
    }

    current_msg_ = &m; // the accessors answer for this message only
    std::optional<std::string> first_error;
    Buffer line;
    for (auto &instance : instances_) {
        const auto index = instance->settings.file_of[static_cast<std::size_t>(kind)];
        if (!index)
            continue;
        line.clear();
        ctx_.precision = instance->settings.timestamp_precision;
        ctx_.max_note_bytes = instance->settings.max_note_bytes;
        ctx_.bounce_rules = instance->bounce_rules.get();
        r.reason.reset(); // each instance classifies with its own rules
        instance->formatters[*index]->format(r, ctx_, line);
        line.push_back('\n');
        if (auto error = instance->files[*index]->append(std::string_view(line.data(), line.size())); error && !first_error)
            first_error = std::move(error);
    }
    current_msg_ = nullptr;
    return first_error;
}

std::variant<Adapter *, std::string> Adapter::for_path(const std::string &config_path)
{
    static std::map<std::string, std::variant<std::unique_ptr<Adapter>, std::string>> loaded;
    auto it = loaded.find(config_path);
    if (it == loaded.end())
        it = loaded.emplace(config_path, load(config_path)).first;
    if (auto *error = std::get_if<std::string>(&it->second))
        return *error;
    return std::get<std::unique_ptr<Adapter>>(it->second).get();
}

} // namespace mtalog::exim

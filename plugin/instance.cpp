#include "instance.hpp"

#include <algorithm>
#include <chrono>
#include <ctime>

#include <spdlog/details/thread_pool.h>

#include "hook_handlers.hpp"
#include "mainlog_format.hpp"
#include "path_registry.hpp"

namespace mtalog {

namespace {

timeval current_time() noexcept
{
    timespec ts{};
    clock_gettime(CLOCK_REALTIME, &ts);
    return timeval{ts.tv_sec, static_cast<suseconds_t>(ts.tv_nsec / 1000)};
}

std::vector<mtacfg::Option> options_of(const ec_config_stanza &stanza)
{
    std::vector<mtacfg::Option> options;
    for (std::size_t i = 0; i < stanza.option_count; ++i) {
        const ec_config_option &o = stanza.options[i];
        const std::string file = o.file ? o.file : (stanza.file ? stanza.file : "?");
        options.push_back(mtacfg::Option{o.name ? o.name : "", mtacfg::Location{file, o.line, o.column},
                                         o.value ? o.value : "", mtacfg::Location{file, o.line, o.value_column}});
    }
    return options;
}

} // namespace

std::variant<std::unique_ptr<Instance>, std::string> Instance::create(ec_core *core, const ec_config_stanza &stanza)
{
    const std::string instance = stanza.instance ? stanza.instance : "";
    const mtacfg::Location where{stanza.file ? stanza.file : "?", stanza.line, stanza.column};
    auto result = mtacfg::validate_mtalog(options_of(stanza), instance, where);
    if (auto *error = std::get_if<mtacfg::ConfigError>(&result))
        return error->render();
    auto settings = std::get<mtacfg::Settings>(std::move(result));
    std::unique_ptr<Instance> self(new Instance(core, std::move(settings)));
    if (auto error = self->compile_formats())
        return *error;
    for (const auto &file : self->settings_.files) {
        if (auto conflict = PathRegistry::global().claim(file.path, file.format, self.get(), self->diag_.label()))
            return mtacfg::ConfigError{where, *conflict}.render();
    }
    return self;
}

std::optional<std::string> Instance::compile_formats()
{
    auto made = make_formatters(settings_);
    if (auto *error = std::get_if<std::string>(&made))
        return *error;
    formatters_ = std::move(std::get<std::vector<std::unique_ptr<Formatter>>>(made));
    return std::nullopt;
}

Instance::Instance(ec_core *core, mtacfg::Settings settings)
    : core_(core), settings_(std::move(settings)), diag_(core, mtacfg::stanza_label(settings_.instance)),
      format_ctx_{core, settings_.timestamp_precision, settings_.max_note_bytes, {}}
{
}

Instance::~Instance()
{
    stop();
    PathRegistry::global().release(this);
}

std::optional<std::string> Instance::start()
{
    if (!settings_.enabled) {
        diag_.report(EC_LOG_NOTICE, "enabled = off: loaded passively, writing nothing");
        return std::nullopt;
    }
    try {
        format_ctx_.mainlog_bindings = mainlog_binding_texts(format_ctx_, kCachedBindingSlots);
        // The queue carries batches of up to kBatchRecords records: queue_size
        // records make this many batches in flight.
        admission_ = std::make_unique<Admission>(admission_capacity());
        staging_ = std::make_unique<Staging>(settings_.files.size());
        // Admission keeps records within queue_size; the rest of spdlog's
        // queue is room for flush and reopen messages, so posting never blocks.
        pool_ = std::make_shared<spdlog::details::thread_pool>(admission_capacity() + kControlHeadroom, 1);
        if (settings_.compress != mtacfg::Compression::none)
            compressor_ = std::make_unique<Compressor>(settings_.compress, settings_.log_mode, diag_);
        for (std::size_t index = 0; index < settings_.files.size(); ++index) {
            const auto &spec = settings_.files[index];
            auto file = std::make_unique<File>();
            file->index = index;
            file->spec = spec;
            file->formatter = formatters_[index].get();
            SinkOptions options;
            options.path = spec.path;
            options.mode = spec.mode;
            options.header = file->formatter->header();
            options.overflow = settings_.overflow;
            options.overflow_timeout = settings_.overflow_timeout;
            options.reopen_check_interval = settings_.reopen_check_interval;
            options.rotate_size = settings_.rotate_size;
            options.rotate_interval = settings_.rotate_interval;
            options.rotate_utc = settings_.rotate_utc;
            options.rotate_keep = settings_.rotate_keep;
            options.compress = settings_.compress;
            options.follow_symlinks = spec.follow_symlinks;
            file->sink = std::make_shared<LogFileSink>(std::move(options), file->counters, diag_, admission_.get(),
                                                       compressor_.get());
            if (auto error = file->sink->open()) {
                files_.push_back(std::move(file));
                shut_down_writers();
                return diag_.label() + ": " + *error;
            }
            file->logger = std::make_shared<spdlog::async_logger>(diag_.label(), file->sink, pool_,
                                                                  spdlog::async_overflow_policy::block);
            file->logger->set_level(spdlog::level::info);
            file->logger->flush_on(spdlog::level::off);
            file->logger->set_error_handler([this, counters = &file->counters](const std::string &message) {
                counters->dropped_internal.fetch_add(1, std::memory_order_relaxed);
                diag_.limited(log_error_limit_, EC_LOG_ERROR, [&] { return "record dropped: " + message; });
            });
            files_.push_back(std::move(file));
        }
        for (mtacfg::RecordKind kind : mtacfg::kAllRecordKinds) {
            const auto index = settings_.file_of[static_cast<std::size_t>(kind)];
            route_[static_cast<std::size_t>(kind)] = index ? files_[*index].get() : nullptr;
        }
        flusher_ = std::thread([this] { flusher_loop(); });
        started_ = true;
        started_before_ = true;
    } catch (const std::exception &e) {
        shut_down_writers();
        return diag_.label() + ": cannot start: " + e.what();
    }
    if (auto error = register_hooks()) {
        stop();
        return diag_.label() + ": " + *error;
    }
    if (settings_.debug_level >= 1) {
        for (const auto &file : files_) {
            std::string kinds;
            for (mtacfg::RecordKind kind : mtacfg::kAllRecordKinds)
                if (route_[static_cast<std::size_t>(kind)] == file.get())
                    kinds += (kinds.empty() ? "" : ", ") + std::string(mtacfg::record_name(kind));
            diag_.report(EC_LOG_DEBUG, "writing " + kinds + " records to \"" + file->spec.path + "\" (format " +
                                           mtacfg::format_name(file->spec.format) + ")");
        }
    }
    return std::nullopt;
}

std::optional<std::string> Instance::register_hooks()
{
    auto *self = static_cast<void *>(this);
    auto routed = [&](RecordKind kind) { return route_[static_cast<std::size_t>(kind)] != nullptr; };
    bool ok = true;
    if (routed(RecordKind::attempt))
        ok = ok && core_->register_core_log_attempt_v1_hook_last(core_, handlers::attempt, self) == 0;
    if (routed(RecordKind::connection_failure))
        ok = ok && core_->register_core_log_client_connection_failure_hook_last(core_, handlers::connection_failure,
                                                                                self) == 0;
    if (routed(RecordKind::permanent_failure))
        ok = ok && core_->register_core_log_permanent_failure_v1_hook_last(core_, handlers::permanent_failure,
                                                                           self) == 0;
    ok = ok && core_->register_core_log_reopen_hook_last(core_, handlers::reopen, self) == 0;
    if (!ok)
        return "the core refused a hook registration";
    return std::nullopt;
}

void Instance::stop() noexcept
{
    if (!started_)
        return;
    started_ = false;
    // No hook call is running or can start once this returns.
    core_->unregister_closure(core_, this);
    // A writer retrying a failing file gives up after overflow_timeout from now.
    for (const auto &file : files_)
        file->sink->begin_shutdown();
    {
        std::lock_guard lock(flusher_mutex_);
        flusher_stop_ = true;
    }
    flusher_wake_.notify_all();
    if (flusher_.joinable())
        flusher_.join();
    try {
        hand_off_all(); // no hook call runs any more: every staged record goes to the queue
    } catch (const std::exception &e) {
        diag_.report(EC_LOG_ERROR, std::string("error while handing off staged records: ") + e.what());
    }
    shut_down_writers();
}

void Instance::shut_down_writers() noexcept
{
    try {
        for (const auto &file : files_)
            if (file->logger)
                file->logger->flush(); // queued behind every accepted record
        // The pool's destructor processes everything queued, then joins its
        // thread. Our logger references outlive it, so the last reference is
        // always dropped here, after the join, never on the worker thread.
        pool_.reset();
        for (const auto &file : files_)
            file->logger.reset();
        for (const auto &file : files_)
            if (file->sink)
                file->sink->finish(); // last write, then close
        if (compressor_)
            compressor_->stop(); // finishes the files already rotated
        for (const auto &file : files_) {
            file->sink.reset();
            if (started_before_)
                diag_.report(EC_LOG_NOTICE, "closed \"" + file->spec.path + "\": " + file->counters.render());
        }
        files_.clear();
        route_ = {};
    } catch (const std::exception &e) {
        diag_.report(EC_LOG_ERROR, std::string("error while shutting down: ") + e.what());
    }
}

void Instance::flusher_loop()
{
    std::unique_lock lock(flusher_mutex_);
    while (!flusher_wake_.wait_for(lock, settings_.flush_interval, [this] { return flusher_stop_; })) {
        lock.unlock();
        try {
            hand_off_all(true); // records staged by threads that went quiet
        } catch (...) {
        }
        for (const auto &file : files_) {
            try {
                file->logger->flush();
            } catch (...) {
            }
        }
        lock.lock();
    }
}

void Instance::emit(Record &record)
{
    File *file = route_[static_cast<std::size_t>(record.kind)];
    if (file == nullptr)
        return;
    Staging::Stage &stage = staging_->local();
    std::lock_guard lock(stage.mutex);
    record.cache = &stage.cache;
    Buffer &lines = stage.lines[file->index];
    const std::size_t before = lines.size();
    try {
        file->formatter->format(record, format_ctx_, lines);
        lines.push_back('\n');
    } catch (const std::exception &e) {
        lines.resize(before); // keep the batch whole lines only
        file->counters.dropped_internal.fetch_add(1, std::memory_order_relaxed);
        diag_.limited(log_error_limit_, EC_LOG_ERROR, [&] { return std::string("record dropped: ") + e.what(); });
        return;
    }
    if (++stage.records[file->index] >= Staging::kBatchRecords || lines.size() >= Staging::kBatchBytes)
        hand_off(stage, *file);
}

void Instance::hand_off(Staging::Stage &stage, File &file)
{
    const std::uint32_t records = stage.records[file.index];
    if (records == 0)
        return;
    Buffer &lines = stage.lines[file.index];
    stage.records[file.index] = 0;
    const bool wait = settings_.overflow == mtacfg::Overflow::block;
    if (!admission_->admit(wait ? settings_.overflow_timeout : std::chrono::microseconds(0))) {
        file.counters.dropped_overflow.fetch_add(records, std::memory_order_relaxed);
        lines.clear();
        diag_.limited(overflow_limit_, EC_LOG_WARNING, [&] {
            return "queue full (" + std::to_string(settings_.queue_size) + " records): dropping records (overflow = " +
                   (wait ? "block, waited " + std::to_string(settings_.overflow_timeout.count() / 1000) + " ms"
                         : std::string("drop")) +
                   ")";
        });
        return;
    }
    file.counters.accepted.fetch_add(records, std::memory_order_relaxed);
    try {
        // spdlog copies the batch into its queue; the time is only spdlog's.
        file.logger->log(spdlog::source_loc{}, spdlog::level::info, spdlog::string_view_t(lines.data(), lines.size()));
    } catch (const std::exception &e) {
        admission_->release(); // it never reached the queue
        file.counters.accepted.fetch_sub(records, std::memory_order_relaxed);
        file.counters.dropped_internal.fetch_add(records, std::memory_order_relaxed);
        diag_.limited(log_error_limit_, EC_LOG_ERROR, [&] { return std::string("records dropped: ") + e.what(); });
    }
    lines.clear();
}

void Instance::hand_off_all(bool trim)
{
    staging_->for_each([this, trim](Staging::Stage &stage) {
        std::lock_guard lock(stage.mutex);
        for (const auto &file : files_) {
            const bool quiet = stage.records[file->index] == 0; // nothing staged since the last hand-off
            hand_off(stage, *file);
            // A thread that went quiet after a burst gives its stage's memory
            // back, so many threads that once logged hold no more than the
            // inline buffer; a busy thread keeps its buffer.
            Buffer &lines = stage.lines[file->index];
            if (trim && quiet && lines.capacity() > Staging::kKeptBytes)
                lines = Buffer();
        }
    });
}

void Instance::log_message_record(RecordKind kind, const ec_message *msg, const domain_record *dr,
                                  const timeval *now, const char *note, int note_len)
{
    Record r;
    r.kind = kind;
    r.now = now ? *now : current_time();
    r.msg = msg;
    r.dr = dr;
    if (note != nullptr && note_len >= 0) {
        r.note = std::string_view(note, static_cast<std::size_t>(note_len));
        r.has_note = true;
    }
    emit(r);
}

void Instance::log_connection_failure(const sockaddr *addr, int err, const domain_record *dr, int binding_slot,
                                      const timeval *now)
{
    Record r;
    r.kind = RecordKind::connection_failure;
    r.now = now ? *now : current_time();
    r.addr = addr;
    r.err = err;
    r.dr = dr;
    r.binding_slot = binding_slot;
    emit(r);
}

void Instance::reopen()
{
    // Queue a reopen behind every record accepted so far, for every file,
    // then wait (bounded) until the writer has done them, so that the new
    // files exist when the hook returns.
    hand_off_all(); // records staged before the reopen belong before it in the queue
    std::vector<std::uint64_t> seen;
    for (const auto &file : files_) {
        seen.push_back(file->sink->reopens_done());
        file->logger->log(spdlog::source_loc{}, LogFileSink::kReopenLevel, spdlog::string_view_t());
    }
    for (std::size_t i = 0; i < files_.size(); ++i) {
        const auto &file = files_[i];
        if (!file->sink->wait_for_reopen(seen[i], kReopenWait)) {
            diag_.report(EC_LOG_WARNING, "reopen of \"" + file->spec.path + "\" still queued after " +
                                             std::to_string(kReopenWait.count()) + " ms; it will happen in order");
            continue;
        }
        if (settings_.debug_level >= 1)
            diag_.report(EC_LOG_DEBUG, "reopened \"" + file->spec.path + "\"");
    }
}

std::optional<std::string> Instance::control(std::string_view command)
{
    if (command == "stats") {
        if (files_.empty())
            return std::string("no files open\n");
        hand_off_all(); // count every record logged so far as accepted
        std::string out;
        FileCounters total;
        for (const auto &file : files_) {
            out += "file=\"" + file->spec.path + "\" " + file->counters.render() + "\n";
            total.add(file->counters);
        }
        return out + "total " + total.render() + "\n";
    }
    return std::nullopt;
}

} // namespace mtalog

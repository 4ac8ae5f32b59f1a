#include "instance.hpp"

#include <chrono>
#include <ctime>

#include <spdlog/details/thread_pool.h>

#include "hook_handlers.hpp"
#include "metrics.hpp"
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
    if (self->settings_.bounce_classes) {
        auto rules = BounceRules::load(self->settings_.bounce_rules, self->settings_.bounce_rules_where);
        if (auto *error = std::get_if<mtacfg::ConfigError>(&rules))
            return error->render();
        self->bounce_rules_ = std::get<0>(std::move(rules));
        self->format_ctx_.bounce_rules = self->bounce_rules_.get();
    }
    self->format_ctx_.bounce_counts = &self->bounce_counts_;
    for (const auto &file : self->settings_.files) {
        if (auto conflict = PathRegistry::global().claim(file.path, file.where, self.get(), self->diag_.label()))
            return mtacfg::ConfigError{file.where, *conflict}.render();
    }
    const auto &metrics = self->settings_.metrics_file;
    if (!metrics.empty())
        if (auto conflict = PathRegistry::global().claim(metrics, self->settings_.metrics_file_where, self.get(),
                                                         self->diag_.label(), "metrics_file"))
            return mtacfg::ConfigError{self->settings_.metrics_file_where, *conflict}.render();
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
      format_ctx_{core, settings_.timestamp_precision, settings_.max_note_bytes, {}, {}, {}, {}, {}, {}}
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
        cache_binding_texts(format_ctx_, kCachedBindingSlots);
        batcher_ = std::make_unique<Batcher>(settings_, diag_);
        pool_ = std::make_shared<spdlog::details::thread_pool>(batcher_->queue_slots(settings_.files.size()), 1,
                                                               [] { name_thread("mtalog-writer"); });
        batcher_->attach(pool_);
        if (settings_.compress != mtacfg::Compression::none)
            compressor_ = std::make_unique<Compressor>(settings_.compress, diag_);
        for (std::size_t index = 0; index < settings_.files.size(); ++index) {
            const auto &spec = settings_.files[index];
            auto file = std::make_unique<File>();
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
            file->sink = std::make_shared<LogFileSink>(std::move(options), file->counters, diag_, batcher_->admission(),
                                                       compressor_.get());
            if (auto error = file->sink->open()) {
                files_.push_back(std::move(file));
                shut_down_writers();
                return diag_.label() + ": " + *error;
            }
            file->logger = make_batch_logger(diag_.label(), {file->sink}, pool_);
            file->logger->set_level(spdlog::level::info);
            file->logger->flush_on(spdlog::level::off);
            // Every batch is posted to the pool directly and the sink catches
            // its own errors, both counting record by record; this handler
            // only reports anything else spdlog might catch.
            file->logger->set_error_handler([this](const std::string &message) {
                diag_.limited(batcher_->error_limit(), EC_LOG_ERROR, [&] { return "spdlog: " + message; });
            });
            file->lane.index = index;
            file->lane.counters = &file->counters;
            file->lane.logger = file->logger.get();
            file->lane.sink = file->sink.get();
            files_.push_back(std::move(file));
        }
        for (mtacfg::RecordKind kind : mtacfg::kAllRecordKinds) {
            const auto index = settings_.file_of[static_cast<std::size_t>(kind)];
            route_[static_cast<std::size_t>(kind)] = index ? files_[*index].get() : nullptr;
        }
        write_metrics(); // the file exists from the start
        flusher_ = std::thread([this] { name_thread("mtalog-flush"); flusher_loop(); });
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

Instance::Deadline Instance::overflow_deadline() const
{
    return std::chrono::steady_clock::now() + settings_.overflow_timeout;
}

void Instance::stop() noexcept
{
    if (!started_)
        return;
    started_ = false;
    // No hook call is running or can start once this returns.
    core_->unregister_closure(core_, this);
    // One deadline for a writer retrying a failing file, for all batches.
    const Deadline deadline = overflow_deadline();
    for (const auto &file : files_)
        file->sink->begin_shutdown(deadline);
    {
        std::lock_guard lock(flusher_mutex_);
        flusher_stop_ = true;
    }
    flusher_wake_.notify_all();
    if (flusher_.joinable())
        flusher_.join();
    // No hook call runs any more: every staged record goes to the queue,
    // room or not (it is in memory already; the writer's deadline bounds the
    // wait, and what it cannot write it counts).
    for (const auto &file : files_) {
        try {
            batcher_->drain_for_unload(file->lane);
        } catch (const std::exception &e) {
            diag_.report(EC_LOG_ERROR, std::string("error while handing off staged records: ") + e.what());
        }
    }
    shut_down_writers();
}

void Instance::shut_down_writers() noexcept
{
    for (const auto &file : files_) {
        try {
            if (file->logger)
                batcher_->post_marker(file->lane, spdlog::level::off); // a flush, behind every accepted record
        } catch (const std::exception &e) {
            diag_.report(EC_LOG_ERROR, std::string("error while flushing: ") + e.what());
        }
    }
    // The pool's destructor processes everything queued, then joins its
    // thread. Our logger references outlive it, so the last reference is
    // always dropped here, after the join, never on the worker thread.
    if (batcher_)
        batcher_->detach();
    pool_.reset();
    for (const auto &file : files_) {
        file->lane.logger = nullptr;
        file->lane.sink = nullptr;
        file->logger.reset();
    }
    try {
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
        if (started_before_) {
            report_totals();
            write_metrics(); // the final counts
        }
        files_.clear();
        route_ = {};
    } catch (const std::exception &e) {
        diag_.report(EC_LOG_ERROR, std::string("error while shutting down: ") + e.what());
        files_.clear();
        route_ = {};
    }
}

void Instance::report_totals()
{
    FileCounters total;
    for (const auto &file : files_)
        total.add(file->counters);
    const std::uint64_t overflow = total.dropped_overflow.load(), write_error = total.dropped_write_error.load(),
                        internal = total.dropped_internal.load();
    std::string text = "stopped: " + std::to_string(total.written.load()) + " records written, ";
    if (overflow + write_error + internal == 0) {
        diag_.report(EC_LOG_NOTICE, text + "none dropped");
        return;
    }
    std::string why;
    for (const auto &[name, count] : {std::pair{"dropped_overflow", overflow}, std::pair{"dropped_write_error", write_error},
                                      std::pair{"dropped_internal", internal}})
        if (count > 0)
            why += (why.empty() ? "" : ", ") + std::string(name) + " " + std::to_string(count);
    diag_.report(EC_LOG_ERROR, text + std::to_string(overflow + write_error + internal) + " dropped (" + why + ")");
}

void Instance::flusher_loop()
{
    auto metrics_due = std::chrono::steady_clock::now() + settings_.metrics_interval;
    std::unique_lock lock(flusher_mutex_);
    while (!flusher_wake_.wait_for(lock, settings_.flush_interval, [this] { return flusher_stop_; })) {
        lock.unlock();
        for (const auto &file : files_) {
            try {
                batcher_->flusher_tick(file->lane);
            } catch (...) {
            }
        }
        batcher_->flusher_round_done(); // once per round: per file, a second call would find no take since the first
        if (const auto now = std::chrono::steady_clock::now(); now >= metrics_due) {
            write_metrics();
            metrics_due = now + settings_.metrics_interval;
        }
        lock.lock();
    }
}

void Instance::write_metrics() noexcept
{
    if (settings_.metrics_file.empty() || !batcher_)
        return;
    try {
        std::vector<MetricsSource> sources;
        for (const auto &file : files_)
            sources.push_back({file->spec.path, &file->counters});
        const Admission &queue = *batcher_->admission();
        const std::string text = render_metrics(settings_.instance, sources, queue.waiting(), queue.capacity()) +
                                 render_bounce_metrics(settings_.instance, bounce_counts_,
                                                       bounce_rules_ ? bounce_rules_->failed_searches() : 0);
        if (auto error = replace_file(settings_.metrics_file, text, 0644))
            diag_.limited(metrics_error_limit_, EC_LOG_ERROR, [&] { return "metrics_file: " + *error; });
    } catch (const std::exception &e) {
        diag_.limited(metrics_error_limit_, EC_LOG_ERROR, [&] { return std::string("metrics_file: ") + e.what(); });
    }
}

void Instance::emit(Record &record)
{
    File *file = route_[static_cast<std::size_t>(record.kind)];
    if (file == nullptr)
        return;
    batcher_->add(file->lane, [&](Buffer &lines, FormatCache &cache) {
        record.cache = &cache;
        file->formatter->format(record, format_ctx_, lines);
    });
}

void Instance::log_message_record(RecordKind kind, const ec_message *msg, const domain_record *dr,
                                  const timeval *now, const char *note, int note_len)
{
    Record r;
    r.kind = kind;
    r.now = now ? record_time(*now) : current_time();
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
    r.now = now ? record_time(*now) : current_time();
    r.addr = addr;
    r.err = err;
    r.dr = dr;
    r.binding_slot = binding_slot;
    emit(r);
}

void Instance::reopen_failed() noexcept
{
    for (const auto &file : files_)
        file->counters.reopen_errors.fetch_add(1, std::memory_order_relaxed);
    try {
        diag_.report(EC_LOG_ERROR, "log_reopen did not finish (out of memory, most likely); a file it did not "
                                   "reopen is reopened once found moved (reopen_check_interval)");
    } catch (...) {
    }
}

void Instance::reopen()
{
    // Queue, for every file, the records staged so far and then a reopen,
    // behind every record accepted so far; then wait until the writer has
    // done them, so that the new files exist when the hook returns. All of it
    // within overflow_timeout: on a stuck disk the reopen stays queued and
    // happens in order later. A reopen called while an earlier one is queued
    // and not yet begun joins it (that one opens the path after this call).
    const Deadline deadline = overflow_deadline();
    std::vector<std::uint64_t> targets(files_.size(), 0);
    for (std::size_t i = 0; i < files_.size(); ++i) {
        File &file = *files_[i];
        // The hand-off lock prefers writers: once this waits, no new batch
        // gets ahead. One deadline serves every file: time spent waiting on
        // an earlier file's lane (a full queue, a stuck disk) is gone for the
        // later ones, whose batches being posted may have begun after this
        // reopen did and so end after its deadline. When the lock is not
        // had by then, the marker is posted without collecting, and that
        // lane's quiet staged records (logged before the reopen) go to the
        // new file (docs/operations.md: "the disk is stuck"). Otherwise
        // every record accepted before the reopen goes to the old file.
        std::unique_lock handoff(file.lane.handoff, std::defer_lock);
        (void)handoff.try_lock_until(deadline);
        std::lock_guard marker(file.marker_mutex);
        if (file.reopens_posted > file.sink->reopens_started()) {
            targets[i] = file.reopens_posted;
            continue;
        }
        // Staged records were logged before this reopen: they go before its
        // marker even when the queue is full (they are in memory already).
        if (handoff.owns_lock())
            batcher_->collect_all(file.lane);
        batcher_->post_marker(file.lane, LogFileSink::kReopenLevel);
        targets[i] = ++file.reopens_posted;
    }
    for (std::size_t i = 0; i < files_.size(); ++i) {
        const auto &file = files_[i];
        if (!file->sink->wait_for_reopen(targets[i] - 1, deadline)) {
            diag_.report(EC_LOG_WARNING, "reopen of \"" + file->spec.path + "\" not done after " +
                                             std::to_string(settings_.overflow_timeout.count() / 1000) +
                                             " ms (overflow_timeout): still queued, or the old file fails; "
                                             "it will happen in order");
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
        // Count the records staged so far as accepted, as the flusher would.
        for (const auto &file : files_)
            batcher_->collect_for_stats(file->lane);
        std::string out;
        FileCounters total;
        for (const auto &file : files_) {
            out += "file=\"" + file->spec.path + "\" " + file->counters.render() + "\n";
            total.add(file->counters);
        }
        return out + "total " + total.render() + "\n" + render_bounce_stats(bounce_counts_, bounce_rules_ ? bounce_rules_->failed_searches() : 0);
    }
    return std::nullopt;
}

} // namespace mtalog

#include "instance.hpp"

#include <algorithm>
#include <chrono>
#include <ctime>
#include <shared_mutex>

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
        if (auto conflict = PathRegistry::global().claim(file.path, file.where, self.get(), self->diag_.label()))
            return mtacfg::ConfigError{file.where, *conflict}.render();
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
        // queue_size bounds what waits in the queue, in admission units
        // (records, or 256 bytes); a smaller queue gets smaller batches so
        // that it still holds several.
        admission_ = std::make_unique<Admission>(settings_.queue_size);
        batch_records_ = std::min<std::size_t>(Staging::kBatchRecords, settings_.queue_size);
        batch_bytes_ = batch_records_ * Admission::kBytesPerUnit;
        staging_ = std::make_unique<Staging>(settings_.files.size());
        // A calling thread's batch weighs at least batch_records_ units and is
        // admitted only while fewer than queue_size units wait, so at most
        // this many are queued; collected batches, flushes and reopen markers
        // have their own slots. Posting never blocks.
        const std::size_t batch_slots = (settings_.queue_size + batch_records_ - 1) / batch_records_ + 1;
        pool_ = std::make_shared<spdlog::details::thread_pool>(
            batch_slots + kControlSlotsPerFile * (settings_.files.size() + 1), 1);
        if (settings_.compress != mtacfg::Compression::none)
            compressor_ = std::make_unique<Compressor>(settings_.compress, diag_);
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
            // Every batch is posted to the pool directly and the sink catches
            // its own errors, both counting record by record; this handler
            // only reports anything else spdlog might catch.
            file->logger->set_error_handler([this](const std::string &message) {
                diag_.limited(log_error_limit_, EC_LOG_ERROR, [&] { return "spdlog: " + message; });
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
            std::unique_lock lock(file->handoff);
            collect_and_queue(*file, LogFileSink::kFinalLevel, false);
        } catch (const std::exception &e) {
            diag_.report(EC_LOG_ERROR, std::string("error while handing off staged records: ") + e.what());
        }
        // What could not be collected (out of memory) is lost: count it.
        staging_->for_each([&](Staging::Stage &stage) {
            std::lock_guard lock(stage.mutex);
            const std::uint32_t left = std::exchange(stage.records[file->index], 0);
            file->counters.accepted.fetch_add(left, std::memory_order_relaxed);
            file->counters.dropped_internal.fetch_add(left, std::memory_order_relaxed);
        });
    }
    shut_down_writers();
}

void Instance::shut_down_writers() noexcept
{
    try {
        for (const auto &file : files_)
            if (file->logger)
                post_marker(*file, spdlog::level::off); // a flush, queued behind every accepted record
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
        if (started_before_)
            report_totals();
        files_.clear();
        route_ = {};
    } catch (const std::exception &e) {
        diag_.report(EC_LOG_ERROR, std::string("error while shutting down: ") + e.what());
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
    std::unique_lock lock(flusher_mutex_);
    while (!flusher_wake_.wait_for(lock, settings_.flush_interval, [this] { return flusher_stop_; })) {
        lock.unlock();
        for (const auto &file : files_) {
            try {
                // A thread busy handing off its own batch is left alone.
                if (std::unique_lock handoff(file->handoff, std::try_to_lock); handoff.owns_lock())
                    collect_quiet_records(*file, true);
                if (file->sink->flushes_done() >= file->flushes_posted) {
                    post_marker(*file, spdlog::level::off);
                    ++file->flushes_posted;
                }
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
    std::unique_lock lock(stage.mutex);
    record.cache = &stage.cache;
    Buffer &lines = stage.lines[file->index];
    const std::size_t before = lines.size();
    try {
        file->formatter->format(record, format_ctx_, lines);
        lines.push_back('\n');
    } catch (const std::exception &e) {
        lines.resize(before); // keep the batch whole lines only
        // Taken in and lost: accepted = written + dropped_* still holds.
        file->counters.accepted.fetch_add(1, std::memory_order_relaxed);
        file->counters.dropped_internal.fetch_add(1, std::memory_order_relaxed);
        diag_.limited(log_error_limit_, EC_LOG_ERROR, [&] { return std::string("record dropped: ") + e.what(); });
        return;
    }
    if (++stage.records[file->index] >= batch_records_ || lines.size() >= batch_bytes_)
        hand_off_own(lock, stage, *file, settings_.overflow == mtacfg::Overflow::block ? overflow_deadline() : Deadline{});
}

void Instance::hand_off_own(std::unique_lock<std::mutex> &stage_lock, Staging::Stage &stage, File &file,
                            Deadline deadline)
{
    const std::size_t index = file.index;
    std::shared_lock handoff(file.handoff, std::try_to_lock);
    if (!handoff.owns_lock()) {
        // A collector holds the file (or waits for it) and may take this
        // stage's records: never wait for it holding the stage. Collectors
        // only move records while they hold it, so with overflow = drop this
        // waits for a memory copy.
        stage_lock.unlock();
        const bool got = settings_.overflow == mtacfg::Overflow::drop || handoff.try_lock_until(deadline);
        if (settings_.overflow == mtacfg::Overflow::drop)
            handoff.lock();
        stage_lock.lock();
        if (!got) {
            const std::uint32_t refused = std::exchange(stage.records[index], 0);
            stage.lines[index].clear();
            count_refused(file, refused);
            return;
        }
    }
    const std::uint32_t records = stage.records[index];
    if (records == 0)
        return; // a collector took them
    // Wait for room without the stage: collectors of other files may visit
    // it meanwhile. This file's records stay put: only this thread adds to
    // them, and no collector of this file gets past the shared lock.
    const std::size_t units = Admission::weight(records, stage.lines[index].size());
    stage_lock.unlock();
    const bool admitted = admission_->admit(units, deadline);
    stage_lock.lock();
    stage.records[index] = 0;
    if (admitted)
        queue(file, stage.lines[index], records, units, LogFileSink::kBatchLevel);
    else
        count_refused(file, records);
    stage.lines[index].clear();
}

std::size_t Instance::collect(File &file, bool trim)
{
    file.collected.clear();
    std::size_t records = 0;
    staging_->for_each([&](Staging::Stage &stage) {
        std::lock_guard lock(stage.mutex);
        Buffer &lines = stage.lines[file.index];
        const std::uint32_t staged = stage.records[file.index];
        if (staged > 0) {
            try {
                file.collected.append(lines.data(), lines.data() + lines.size());
            } catch (const std::bad_alloc &) {
                return; // they stay staged, for the next collection
            }
            records += staged;
            stage.records[file.index] = 0;
            lines.clear();
        } else if (trim && lines.capacity() > Staging::kKeptBytes) {
            // A thread that went quiet after a burst gives its stage's
            // memory back; a busy thread keeps its buffer.
            lines = Buffer();
        }
    });
    return records;
}

bool Instance::collect_and_queue(File &file, spdlog::level::level_enum level, bool trim)
{
    const std::size_t records = collect(file, trim);
    bool queued = false;
    if (records > 0) {
        const std::size_t units = Admission::weight(records, file.collected.size());
        admission_->force(units);
        queued = queue(file, file.collected, records, units, level);
    }
    if (file.collected.capacity() > Staging::kKeptBytes)
        file.collected = Buffer(); // a burst's batch is not kept for the instance's lifetime
    return queued;
}

void Instance::collect_quiet_records(File &file, bool trim)
{
    // One collected batch per file, and only once the previous one left the
    // queue, so collecting never fills the queue with small batches. While
    // the queue is full the records wait in their stages (nothing is refused
    // here: busy threads meet the overflow policy with their own batches),
    // but not for more than two flush intervals: then they go anyway.
    if (file.sink->collected_done() < file.collected_posted)
        return;
    if (admission_->waiting() >= admission_->capacity() && ++file.collect_skips < 2)
        return;
    file.collect_skips = 0;
    if (collect_and_queue(file, LogFileSink::kCollectedLevel, trim))
        ++file.collected_posted;
}

bool Instance::queue(File &file, const Buffer &lines, std::size_t records, std::size_t units,
                     spdlog::level::level_enum level)
{
    file.counters.accepted.fetch_add(records, std::memory_order_relaxed);
    try {
        // spdlog copies the batch into its queue; the time is only spdlog's,
        // and the source line field carries the admission units back to the
        // writer. Posted to the pool directly, so a failure reaches this
        // catch (and is counted per record), not spdlog's error handler.
        const spdlog::details::log_msg msg(spdlog::log_clock::time_point{},
                                           spdlog::source_loc{nullptr, static_cast<int>(units), nullptr},
                                           file.logger->name(), level, spdlog::string_view_t(lines.data(), lines.size()));
        pool_->post_log(std::shared_ptr<spdlog::async_logger>(file.logger), msg, spdlog::async_overflow_policy::block);
        return true;
    } catch (const std::exception &e) {
        admission_->release(units); // it never reached the queue
        file.counters.dropped_internal.fetch_add(records, std::memory_order_relaxed);
        diag_.limited(log_error_limit_, EC_LOG_ERROR, [&] {
            return std::to_string(records) + " records dropped: " + e.what();
        });
        return false;
    }
}

void Instance::post_marker(File &file, spdlog::level::level_enum level)
{
    auto logger = std::shared_ptr<spdlog::async_logger>(file.logger);
    if (level == spdlog::level::off) {
        pool_->post_flush(std::move(logger), spdlog::async_overflow_policy::block);
        return;
    }
    const spdlog::details::log_msg msg(spdlog::log_clock::time_point{}, spdlog::source_loc{}, file.logger->name(),
                                       level, spdlog::string_view_t());
    pool_->post_log(std::move(logger), msg, spdlog::async_overflow_policy::block);
}

void Instance::count_refused(File &file, std::size_t records)
{
    if (records == 0)
        return;
    file.counters.dropped_overflow.fetch_add(records, std::memory_order_relaxed);
    const bool wait = settings_.overflow == mtacfg::Overflow::block;
    diag_.limited(overflow_limit_, EC_LOG_WARNING, [&] {
        return "queue full (" + std::to_string(settings_.queue_size) + " records): dropping records (overflow = " +
               (wait ? "block, waited " + std::to_string(settings_.overflow_timeout.count() / 1000) + " ms"
                     : std::string("drop")) +
               ")";
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
        // gets ahead, and batches being posted finish by their own deadlines,
        // which end before this one. Only a scheduler stall past the
        // deadline lets staged records through to the new file.
        std::unique_lock handoff(file.handoff, std::defer_lock);
        (void)handoff.try_lock_until(deadline);
        std::lock_guard marker(file.marker_mutex);
        if (file.reopens_posted > file.sink->reopens_started()) {
            targets[i] = file.reopens_posted;
            continue;
        }
        // Staged records were logged before this reopen: they go before its
        // marker even when the queue is full (they are in memory already).
        if (handoff.owns_lock())
            collect_and_queue(file, LogFileSink::kFinalLevel, false);
        post_marker(file, LogFileSink::kReopenLevel);
        targets[i] = ++file.reopens_posted;
    }
    for (std::size_t i = 0; i < files_.size(); ++i) {
        const auto &file = files_[i];
        if (!file->sink->wait_for_reopen(targets[i] - 1, deadline)) {
            diag_.report(EC_LOG_WARNING, "reopen of \"" + file->spec.path + "\" still queued after " +
                                             std::to_string(settings_.overflow_timeout.count() / 1000) +
                                             " ms (overflow_timeout); it will happen in order");
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
        for (const auto &file : files_) {
            std::unique_lock handoff(file->handoff, std::defer_lock);
            if (handoff.try_lock_until(overflow_deadline()))
                collect_quiet_records(*file, false);
        }
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

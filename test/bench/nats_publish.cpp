// The baseline for scripts/bench-ship: a bare libnats asynchronous publisher
// that sends every line of the given files, one message per line, to one
// subject, with at most MAX_PENDING unacknowledged, and waits for every ack.
// It first makes STREAM (that subject, 3 replicas, file storage). With
// HEADERS=1 in the environment each message carries the headers mtalog-ship
// sends (a unique Nats-Msg-Id, Mtalog-Node, Mtalog-Format), so the servers
// do the same de-duplication work.
//   nats_publish URLS STREAM SUBJECT MAX_PENDING FILE...
// Prints "<messages> <seconds>".
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <nats/nats.h>
#include <string>
#include <vector>

int main(int argc, char **argv)
{
    if (argc < 6) {
        std::fprintf(stderr, "usage: nats_publish URLS STREAM SUBJECT MAX_PENDING FILE...\n");
        return 64;
    }
    const char *stream = argv[2], *subject = argv[3];
    std::vector<std::string> lines;
    for (int i = 5; i < argc; ++i) {
        std::ifstream in(argv[i]);
        for (std::string line; std::getline(in, line);)
            lines.push_back(std::move(line));
    }
    natsConnection *nc = nullptr;
    jsCtx *js = nullptr;
    if (natsConnection_ConnectTo(&nc, argv[1]) != NATS_OK) {
        std::fprintf(stderr, "nats_publish: cannot connect to %s\n", argv[1]);
        return 1;
    }
    jsOptions jo;
    jsOptions_Init(&jo);
    jo.PublishAsync.MaxPending = std::atoll(argv[4]);
    natsConnection_JetStream(&js, nc, &jo);
    jsStreamConfig sc;
    jsStreamConfig_Init(&sc);
    const char *subjects[] = {subject};
    sc.Name = stream;
    sc.Subjects = subjects;
    sc.SubjectsLen = 1;
    sc.Storage = js_FileStorage;
    sc.Replicas = 3;
    jsStreamInfo *si = nullptr;
    jsErrCode jerr{};
    for (int attempt = 0; js_AddStream(&si, js, &sc, nullptr, &jerr) != NATS_OK; ++attempt) {
        if (attempt == 50) {
            std::fprintf(stderr, "nats_publish: cannot create stream %s\n", stream);
            return 1;
        }
        nats_Sleep(200); // the cluster may still be electing its leaders
    }
    jsStreamInfo_Destroy(si);
    const bool headers = std::getenv("HEADERS") && std::string(std::getenv("HEADERS")) == "1";
    const auto start = std::chrono::steady_clock::now();
    std::size_t offset = 0;
    for (const auto &line : lines) {
        natsStatus st;
        if (headers) {
            natsMsg *msg = nullptr;
            const std::string id = "bare.0123456789abcdef." + std::to_string(offset);
            st = natsMsg_Create(&msg, subject, nullptr, line.data(), static_cast<int>(line.size()));
            if (st == NATS_OK)
                st = natsMsgHeader_Set(msg, "Nats-Msg-Id", id.c_str());
            if (st == NATS_OK)
                st = natsMsgHeader_Set(msg, "Mtalog-Node", "bare");
            if (st == NATS_OK)
                st = natsMsgHeader_Set(msg, "Mtalog-Format", "mainlog");
            if (st == NATS_OK)
                st = js_PublishMsgAsync(js, &msg, nullptr);
            if (st != NATS_OK)
                natsMsg_Destroy(msg);
        } else {
            st = js_PublishAsync(js, subject, line.data(), static_cast<int>(line.size()), nullptr);
        }
        if (st != NATS_OK) {
            std::fprintf(stderr, "nats_publish: publish failed\n");
            return 1;
        }
        offset += line.size() + 1;
    }
    jsPubOptions po;
    jsPubOptions_Init(&po);
    po.MaxWait = 60000;
    if (js_PublishAsyncComplete(js, &po) != NATS_OK) {
        std::fprintf(stderr, "nats_publish: not every message was acknowledged\n");
        return 1;
    }
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    std::printf("%zu %.3f\n", lines.size(), seconds);
    jsCtx_Destroy(js);
    natsConnection_Destroy(nc);
    nats_Close();
    return 0;
}

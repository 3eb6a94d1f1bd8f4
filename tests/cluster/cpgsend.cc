// cpgsend: a test client that joins a rais CPG group and multicasts garbage
// (or a given file), then stays joined — a stray member that never sends a
// valid Info (issue 3, test 14). Not installed.
//
//   cpgsend --group rais:web (--garbage | --file F) [--count N] [--stay S]
#include <corosync/cpg.h>
#include <sys/uio.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

int main(int argc, char** argv) {
    std::string group, file;
    bool garbage = false;
    int count = 3, stay = 5;
    for (int i = 1; i < argc; i++) {
        std::string a = argv[i];
        if (a == "--group" && i + 1 < argc) group = argv[++i];
        else if (a == "--file" && i + 1 < argc) file = argv[++i];
        else if (a == "--garbage") garbage = true;
        else if (a == "--count" && i + 1 < argc) count = std::atoi(argv[++i]);
        else if (a == "--stay" && i + 1 < argc) stay = std::atoi(argv[++i]);
        else {
            std::fprintf(stderr, "usage: cpgsend --group NAME (--garbage | --file F) [--count N] [--stay S]\n");
            return 2;
        }
    }
    if (group.empty() || (!garbage && file.empty())) return 2;
    std::vector<unsigned char> msg;
    if (garbage) {
        const unsigned char g[] = {'R', 'A', 1, 1, 0, 0, 0, 0, 0xde, 0xad, 0xbe, 0xef, 0xff, 0x00, 0x42};
        msg.assign(std::begin(g), std::end(g));
    } else {
        std::ifstream in(file, std::ios::binary);
        msg.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
    }
    cpg_callbacks_t cb{};
    cpg_handle_t h;
    if (cpg_initialize(&h, &cb) != CS_OK) {
        std::fprintf(stderr, "cpgsend: cannot connect to corosync\n");
        return 1;
    }
    struct cpg_name name {};
    name.length = static_cast<uint32_t>(group.size());
    std::memcpy(name.value, group.data(), group.size());
    if (cpg_join(h, &name) != CS_OK) {
        std::fprintf(stderr, "cpgsend: cannot join %s\n", group.c_str());
        return 1;
    }
    for (int i = 0; i < count; i++) {
        struct iovec iov {msg.data(), msg.size()};
        cs_error_t e;
        while ((e = cpg_mcast_joined(h, CPG_TYPE_AGREED, &iov, 1)) == CS_ERR_TRY_AGAIN) usleep(10000);
        if (e != CS_OK) std::fprintf(stderr, "cpgsend: mcast error %d\n", e);
        usleep(100000);
    }
    std::printf("cpgsend: sent %d message(s) of %zu bytes to %s\n", count, msg.size(), group.c_str());
    std::fflush(stdout);
    sleep(static_cast<unsigned>(stay));
    cpg_finalize(h);
    return 0;
}

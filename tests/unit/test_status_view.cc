// status_view: `raisctl status` (text and --json) and `raisctl events`
// rendered from typed data. The expected texts are what raisd printed before
// the rendering left the daemon (tests and the agent read them, DESIGN §5
// freezes the JSON): any difference here is a change users see.
#include <cppunit/TestFixture.h>
#include <cppunit/extensions/HelperMacros.h>
#include <json-glib/json-glib.h>

#include <deque>
#include <string>

#include "core/glib_ptr.h"
#include "core/status_view.h"
#include "core/view_json.h"
#include "unit/common.h"

namespace {

using namespace rais;
using rais::test::addr;

// A group of six hosts seen from its leader n1: every kind of peer line
// (leader, member, spare, failing, stopping, silent, different
// configuration, departed, not counted) and every kind of address line
// (online, in transition, fixed, orphaned, pinned, cannot assign, unserved).
GroupConfig leader_config() {
    GroupConfig c;
    auto err = parse_config({{"addresses", "n1=198.18.0.101/24 n2=198.18.0.102/24 n3=198.18.0.103/24 "
                                           "n1=198.18.0.104/24 n2=2001:2::5/64 n3=198.18.0.106/24"},
                             {"group", "web"},
                             {"interval", "500"},
                             {"dns_server", "127.0.0.1:15353"},
                             {"dns_zone", "rais.test"}},
                            &c);
    CPPUNIT_ASSERT_MESSAGE(err ? err->message : "", !err);
    return c;
}

HostView host(const std::string& node, std::uint32_t id, double load, std::vector<Holding> serving = {}) {
    HostView h;
    h.node = node;
    h.id = id;
    h.load = load;
    h.serving = std::move(serving);
    return h;
}

PeerStatus peer(const HostView& h, std::uint32_t pid) {
    PeerStatus p;
    p.process = {h.id, pid};
    p.name = h.node;
    p.counted = true;
    p.host = h;
    return p;
}

struct Snapshot {
    GroupConfig config;
    MemberStatus st;
    View v;
    ShellStatus shell;
    double now = 0;
};

Snapshot leader_snapshot() {
    Snapshot s;
    s.config = leader_config();
    s.now = 5000.25;
    const ServiceAddress a1 = addr("198.18.0.101/24"), a2 = addr("198.18.0.102/24"), a3 = addr("198.18.0.103/24"),
                         a4 = addr("198.18.0.104/24"), a5 = addr("2001:2::5/64"), a6 = addr("198.18.0.106/24");
    HostView n1 = host("n1", 1, 20, {{a1, AddressState::Online}, {a5, AddressState::Acquiring}});
    HostView n2 = host("n2", 2, 12.5, {{a2, AddressState::Online}});
    n2.quiesced = true;
    HostView n3 = host("n3", 3, 0);
    n3.ok = false;
    n3.config_match = false;
    HostView n4 = host("n4", 4, 30, {{a5, AddressState::Releasing}});
    n4.capacity = 0;
    n4.stopping = true;
    HostView n5 = host("n5", 5, 0, {{a6, AddressState::Online}});
    n5.departed = true;
    n5.departed_why = "left the group (restart grace)";

    MemberStatus& st = s.st;
    st.group = "web";
    st.name = "n1";
    st.self = {1, 100};
    st.leader = 1;
    st.leader_name = "n1";
    st.quorate = st.quorum_known = st.ready = st.settled = true;
    st.fencing_active = true;
    st.load = 20;
    st.capacity = 100;
    st.ring = 12;
    st.peers = {peer(n1, 100), peer(n2, 200), peer(n3, 300), peer(n4, 400), peer(n5, 500)};
    st.peers[1].silent = true;
    st.peers[4].departed = true;
    st.peers[4].departed_why = n5.departed_why;
    PeerStatus n6;
    n6.process = {6, 600};
    n6.name = "n6";
    st.peers.push_back(n6);
    st.cannot_assign = {a3};
    st.dropped_messages = 3;
    st.unsent_messages = 2;
    st.fixed_holders = {{a4, "n2"}};
    st.two_node = false;
    st.dns = true;
    st.dns_wanted = {a1, a2, a5};

    s.v.config = s.config;
    s.v.now = s.now;
    s.v.hosts = {n1, n2, n3, n4, n5};
    s.v.orphans = {{a3, 4958}};
    s.v.pins = {{a2, "n2"}};

    s.shell.reload_attempts = 3;
    s.shell.config_generation = 2;
    s.shell.reload_error = "parameter 'capacity': \"x\" is not a number";
    s.shell.dns_last = "2026-12-03 16:23:58.123 update: ok (NOERROR)";
    return s;
}

// n2 follows n1; its own health test fails; DNS is the leader's to write.
Snapshot follower_snapshot() {
    Snapshot s = leader_snapshot();
    s.st.name = "n2";
    s.st.self = {2, 200};
    s.st.quorate = false;
    s.st.settled = false;
    s.st.fencing_active = false;
    s.st.ok = false;
    s.st.failing_test = "check_http: \"timeout\" after 2 s";
    s.st.peers[1].host.ok = false;
    s.st.peers[1].silent = false;
    s.st.dns = false;
    s.st.dns_wanted.clear();
    s.st.cannot_assign.clear();
    s.st.dropped_messages = s.st.unsent_messages = 0;
    s.st.fixed_holders.clear();
    s.st.two_node = true;
    s.st.load = 7;
    s.st.capacity = 0;
    s.v.orphans.clear();
    s.v.pins.clear();
    s.shell.reload_error.clear();
    s.shell.dns_last.clear();
    return s;
}

// n3 alone, quiesced and stopping, no leader, quorum not known yet, no DNS.
Snapshot stopping_snapshot() {
    Snapshot s;
    auto err = parse_config({{"addresses", "n1=198.18.0.101/24 n3=198.18.0.103/24"}, {"group", "db"}}, &s.config);
    CPPUNIT_ASSERT_MESSAGE(err ? err->message : "", !err);
    s.now = 10;
    HostView n3 = host("n3", 3, 0, {{addr("198.18.0.103/24"), AddressState::Releasing}});
    n3.quiesced = n3.stopping = true;
    MemberStatus& st = s.st;
    st.group = "db";
    st.name = "n3";
    st.self = {3, 300};
    st.quiesced = st.stopping = true;
    st.ring = 4;
    st.peers = {peer(n3, 300)};
    s.v.config = s.config;
    s.v.now = s.now;
    s.v.hosts = {n3};
    s.shell.reload_attempts = 0;
    s.shell.config_generation = 1;
    return s;
}

std::deque<LoggedEvent> some_events() {
    std::deque<LoggedEvent> events;
    Event e;
    e.kind = EventKind::Acquire;
    e.group = "web";
    e.node = "n1";
    e.address = addr("198.18.0.101/24");
    e.reason = "preferred node n1 is back (failback)";
    events.push_back({e, 1764779038123456});
    e.kind = EventKind::DnsFailed;
    e.node.clear();
    e.address.reset();
    e.reason = "server answered \"REFUSED\"\ttab";
    events.push_back({e, 1764779039000000});
    return events;
}

std::string fake_wall_time(std::int64_t us) { return "T" + std::to_string(us); }

// The reload digest is config.cc's: the expected texts name it DIGEST.
std::string with_digest(std::string text, const GroupConfig& c) {
    auto at = text.find("DIGEST");
    CPPUNIT_ASSERT(at != std::string::npos);
    return text.replace(at, 6, c.digest());
}

StatusInput input(const Snapshot& s) { return StatusInput{s.st, s.v, s.config, s.shell, s.now}; }

// json-glib's own pretty form of `json` (indent 2), as raisd printed status
// --json before: a document parsed and generated again.
std::string regenerated(const std::string& json) {
    GObjectPtr<JsonParser> parser(json_parser_new());
    CPPUNIT_ASSERT(json_parser_load_from_data(parser.get(), json.c_str(), -1, nullptr));
    GObjectPtr<JsonGenerator> gen(json_generator_new());
    json_generator_set_pretty(gen.get(), TRUE);
    json_generator_set_root(gen.get(), json_parser_get_root(parser.get()));
    GCharPtr text(json_generator_to_data(gen.get(), nullptr));
    return std::string(text.get()) + "\n";
}

// status --json: the view's members as view_to_json writes them, then
// `expected_status`; and the whole exactly what parsing and generating it
// again gives (what raisd printed when it built the document that way).
void check_json(const Snapshot& s, const char* expected_status) {
    std::string json = status_json(input(s));
    std::string view = view_to_json(s.v);
    CPPUNIT_ASSERT(json.size() > view.size());
    CPPUNIT_ASSERT_EQUAL(view.substr(0, view.size() - 3) + ",\n", json.substr(0, view.size() - 1));
    CPPUNIT_ASSERT_EQUAL(with_digest(expected_status, s.config), json.substr(view.size() - 1));
    CPPUNIT_ASSERT_EQUAL(regenerated(json), json);
}

const char* const kLeaderText = R"J(group web on n1 (node 1)
  leader: n1; quorate (ring 12)
  fencing: on (departed hosts wait for a fence confirmation); this host settled
  hosts:
    n1 (id 1): leader, ok, util 20.0%
    n2 (id 2): member, ok, quiesced, silent, util 12.5%
    n3 (id 3): member, FAILED tests, DIFFERENT CONFIGURATION, util 0.0%
    n4 (id 4): spare, ok, stopping, util 30.0%
    n5 (id 5): departed: left the group (restart grace)
    n6 (id 6): not counted (sent no Info)
  addresses:
    198.18.0.101/24 -> n1  [prefers n1]
    198.18.0.102/24 -> n2  [prefers n2, pinned to n2]
    198.18.0.103/24 -> UNSERVED  [prefers n3, orphaned 42 s ago, cannot assign]
    198.18.0.104/24 -> n2 (fixed: configured statically, left alone)  [prefers n1]
    2001:2::5/64 -> n1 (acquiring), n4 (releasing)  [prefers n2]
    198.18.0.106/24 -> n5  [prefers n3]
  dns: web.rais.test at 127.0.0.1:15353: advertising 198.18.0.101 198.18.0.102 2001:2::5
       last: 2026-12-03 16:23:58.123 update: ok (NOERROR)
  dropped messages: 3
  unsent messages: 2 (peers would have dropped them: a bug, see the log)
  last reload REFUSED: parameter 'capacity': "x" is not a number
)J";

// The "status" object after the view (view_json's, tested there).
const char* const kLeaderStatus = R"J(  "status" : {
    "group" : "web",
    "node" : "n1",
    "node_id" : 1,
    "leader" : "n1",
    "quorate" : true,
    "ring" : 12,
    "interval" : 500,
    "ok" : true,
    "utilization" : 20.0,
    "quiesced" : false,
    "stopping" : false,
    "settled" : true,
    "fencing" : true,
    "dropped_messages" : 3,
    "unsent_messages" : 2,
    "two_node" : false,
    "fixed" : {
      "198.18.0.104/24" : "n2"
    },
    "reload" : {
      "attempts" : 3,
      "generation" : 2,
      "digest" : "DIGEST",
      "error" : "parameter 'capacity': \"x\" is not a number"
    },
    "members" : [
      {
        "node" : "n1",
        "id" : 1,
        "pid" : 100,
        "role" : "leader",
        "silent" : false,
        "ok" : true,
        "quiesced" : false,
        "utilization" : 20.0
      },
      {
        "node" : "n2",
        "id" : 2,
        "pid" : 200,
        "role" : "member",
        "silent" : true,
        "ok" : true,
        "quiesced" : true,
        "utilization" : 12.5
      },
      {
        "node" : "n3",
        "id" : 3,
        "pid" : 300,
        "role" : "member",
        "silent" : false,
        "ok" : false,
        "quiesced" : false,
        "utilization" : 0.0
      },
      {
        "node" : "n4",
        "id" : 4,
        "pid" : 400,
        "role" : "spare",
        "silent" : false,
        "ok" : true,
        "quiesced" : false,
        "utilization" : 30.0
      },
      {
        "node" : "n5",
        "id" : 5,
        "pid" : 500,
        "role" : "departed",
        "silent" : false,
        "ok" : true,
        "quiesced" : false,
        "utilization" : 0.0,
        "why" : "left the group (restart grace)"
      },
      {
        "node" : "n6",
        "id" : 6,
        "pid" : 600,
        "role" : "not counted",
        "silent" : false,
        "ok" : true,
        "quiesced" : false,
        "utilization" : 0.0
      }
    ],
    "cannot_assign" : [
      "198.18.0.103/24"
    ],
    "dns" : {
      "server" : "127.0.0.1:15353",
      "name" : "web.rais.test",
      "writer" : true,
      "advertised" : [
        "198.18.0.101",
        "198.18.0.102",
        "2001:2::5"
      ],
      "last" : "2026-12-03 16:23:58.123 update: ok (NOERROR)"
    }
  }
}
)J";

const char* const kFollowerText = R"J(group web on n2 (node 2)
  leader: n1; NOT quorate (ring 12)
  fencing: off; this host settling
  hosts:
    n1 (id 1): leader, ok, util 20.0%
    n2 (id 2): member, FAILED tests: check_http: "timeout" after 2 s, quiesced, util 12.5%
    n3 (id 3): member, FAILED tests, DIFFERENT CONFIGURATION, util 0.0%
    n4 (id 4): spare, ok, stopping, util 30.0%
    n5 (id 5): departed: left the group (restart grace)
    n6 (id 6): not counted (sent no Info)
  addresses:
    198.18.0.101/24 -> n1  [prefers n1]
    198.18.0.102/24 -> n2  [prefers n2]
    198.18.0.103/24 -> UNSERVED  [prefers n3]
    198.18.0.104/24 -> UNSERVED  [prefers n1]
    2001:2::5/64 -> n1 (acquiring), n4 (releasing)  [prefers n2]
    198.18.0.106/24 -> n5  [prefers n3]
  dns: web.rais.test at 127.0.0.1:15353 (written by the leader, n1)
)J";

const char* const kFollowerStatus = R"J(  "status" : {
    "group" : "web",
    "node" : "n2",
    "node_id" : 2,
    "leader" : "n1",
    "quorate" : false,
    "ring" : 12,
    "interval" : 500,
    "ok" : false,
    "failing_test" : "check_http: \"timeout\" after 2 s",
    "utilization" : 7.0,
    "quiesced" : false,
    "stopping" : false,
    "settled" : false,
    "fencing" : false,
    "dropped_messages" : 0,
    "unsent_messages" : 0,
    "two_node" : true,
    "fixed" : {    },
    "reload" : {
      "attempts" : 3,
      "generation" : 2,
      "digest" : "DIGEST",
      "error" : ""
    },
    "members" : [
      {
        "node" : "n1",
        "id" : 1,
        "pid" : 100,
        "role" : "leader",
        "silent" : false,
        "ok" : true,
        "quiesced" : false,
        "utilization" : 20.0
      },
      {
        "node" : "n2",
        "id" : 2,
        "pid" : 200,
        "role" : "member",
        "silent" : false,
        "ok" : false,
        "quiesced" : true,
        "utilization" : 12.5
      },
      {
        "node" : "n3",
        "id" : 3,
        "pid" : 300,
        "role" : "member",
        "silent" : false,
        "ok" : false,
        "quiesced" : false,
        "utilization" : 0.0
      },
      {
        "node" : "n4",
        "id" : 4,
        "pid" : 400,
        "role" : "spare",
        "silent" : false,
        "ok" : true,
        "quiesced" : false,
        "utilization" : 30.0
      },
      {
        "node" : "n5",
        "id" : 5,
        "pid" : 500,
        "role" : "departed",
        "silent" : false,
        "ok" : true,
        "quiesced" : false,
        "utilization" : 0.0,
        "why" : "left the group (restart grace)"
      },
      {
        "node" : "n6",
        "id" : 6,
        "pid" : 600,
        "role" : "not counted",
        "silent" : false,
        "ok" : true,
        "quiesced" : false,
        "utilization" : 0.0
      }
    ],
    "cannot_assign" : [],
    "dns" : {
      "server" : "127.0.0.1:15353",
      "name" : "web.rais.test",
      "writer" : false,
      "advertised" : [],
      "last" : ""
    }
  }
}
)J";

const char* const kStoppingText = R"J(group db on n3 (node 3)
  leader: none; quorum unknown (ring 4)
  fencing: off; this host stopping
  hosts:
    n3 (id 3): member, ok, quiesced, stopping, util 0.0%
  addresses:
    198.18.0.101/24 -> UNSERVED  [prefers n1]
    198.18.0.103/24 -> n3 (releasing)  [prefers n3]
)J";

const char* const kStoppingStatus = R"J(  "status" : {
    "group" : "db",
    "node" : "n3",
    "node_id" : 3,
    "leader" : "",
    "quorate" : false,
    "ring" : 4,
    "interval" : 1000,
    "ok" : true,
    "utilization" : 0.0,
    "quiesced" : true,
    "stopping" : true,
    "settled" : false,
    "fencing" : false,
    "dropped_messages" : 0,
    "unsent_messages" : 0,
    "two_node" : false,
    "fixed" : {    },
    "reload" : {
      "attempts" : 0,
      "generation" : 1,
      "digest" : "DIGEST",
      "error" : ""
    },
    "members" : [
      {
        "node" : "n3",
        "id" : 3,
        "pid" : 300,
        "role" : "member",
        "silent" : false,
        "ok" : true,
        "quiesced" : true,
        "utilization" : 0.0
      }
    ],
    "cannot_assign" : []
  }
}
)J";

const char* const kEventsJson = R"J([{"time":1764779038.123456,"event":"acquire","group":"web","node":"n1","address":"198.18.0.101/24","reason":"preferred node n1 is back (failback)"},{"time":1764779039.0,"event":"dns_failed","group":"web","node":"","address":null,"reason":"server answered \"REFUSED\"\ttab"}]
)J";

class StatusViewTest : public CppUnit::TestFixture {
    CPPUNIT_TEST_SUITE(StatusViewTest);
    CPPUNIT_TEST(leader_text);
    CPPUNIT_TEST(leader_json);
    CPPUNIT_TEST(follower_text);
    CPPUNIT_TEST(follower_json);
    CPPUNIT_TEST(stopping_text);
    CPPUNIT_TEST(stopping_json);
    CPPUNIT_TEST(status_json_reads_back_as_the_view);
    CPPUNIT_TEST(quiesce_error_shown);
    CPPUNIT_TEST(failover_shown);
    CPPUNIT_TEST(events);
    CPPUNIT_TEST_SUITE_END();

public:
    void leader_text() { CPPUNIT_ASSERT_EQUAL(std::string(kLeaderText), status_text(input(leader_snapshot()))); }

    void leader_json() { check_json(leader_snapshot(), kLeaderStatus); }

    void follower_text() { CPPUNIT_ASSERT_EQUAL(std::string(kFollowerText), status_text(input(follower_snapshot()))); }

    void follower_json() { check_json(follower_snapshot(), kFollowerStatus); }

    void stopping_text() { CPPUNIT_ASSERT_EQUAL(std::string(kStoppingText), status_text(input(stopping_snapshot()))); }

    void stopping_json() { check_json(stopping_snapshot(), kStoppingStatus); }

    // `raisctl plan --view` reads status --json: the view comes back whole.
    void status_json_reads_back_as_the_view() {
        for (const Snapshot& s : {leader_snapshot(), follower_snapshot(), stopping_snapshot()}) {
            View back;
            auto err = parse_view(status_json(input(s)), &back);
            CPPUNIT_ASSERT_MESSAGE(err ? err->message : "", !err);
            CPPUNIT_ASSERT_EQUAL(view_to_json(s.v), view_to_json(back));
        }
    }

    void quiesce_error_shown() {
        Snapshot s = stopping_snapshot();
        s.shell.quiesce_error = "/run/rais/db.quiesced: No space left on device";
        CPPUNIT_ASSERT_EQUAL(std::string(kStoppingText) +
                                 "  quiesce flag NOT saved: /run/rais/db.quiesced: No space left on device\n",
                             status_text(input(s)));
        // Extended, never renamed: the status object gains one member.
        std::string json = status_json(input(s));
        CPPUNIT_ASSERT(json.find("\"quiesce_error\" : \"/run/rais/db.quiesced: No space left on device\"") !=
                       std::string::npos);
        CPPUNIT_ASSERT_EQUAL(regenerated(json), json);
    }

    // The last failover's breakdown: one text line, a "last_failover" object
    // (steps that did not happen are null).
    void failover_shown() {
        Snapshot s = follower_snapshot();
        FailoverTrace t;
        t.membership(1.0, 12, {"n3"});
        t.quorum(1.0005, 12, true);
        t.ordered(1.08, addr("198.18.0.106/24"));
        t.step(1.0801, addr("198.18.0.106/24"), FailoverStep::ProbeSent);
        t.step(1.131, addr("198.18.0.106/24"), FailoverStep::ProbeSettled);
        t.step(1.132, addr("198.18.0.106/24"), FailoverStep::Plumbed);
        t.step(1.1325, addr("198.18.0.106/24"), FailoverStep::Announced);
        t.done(1.133, addr("198.18.0.106/24"), true);
        s.shell.last_failover = t.last();
        CPPUNIT_ASSERT_EQUAL(std::string(kFollowerText) +
                                 "  last failover: departed=n3 ring=12 addresses=1 failed=0 membership=+0.0ms "
                                 "totem=- quorum=+0.5ms fence=- plan=- sent=- ordered=+80.0ms probe_sent=+80.1ms "
                                 "probe_settled=+131.0ms plumbed=+132.0ms announced=+132.5ms done=+133.0ms "
                                 "first_announced=+132.5ms first_done=+133.0ms (ms after the departure confchg)\n",
                             status_text(input(s)));
        std::string json = status_json(input(s));
        CPPUNIT_ASSERT_EQUAL(regenerated(json), json);
        for (const char* part : {"\"last_failover\" : {", "\"departed\" : [\n        \"n3\"\n      ]",
                                 "\"addresses\" : 1", "\"complete\" : true", "\"fence\" : null",
                                 "\"announced\" : 132.5", "\"done\" : 133.0"})
            CPPUNIT_ASSERT_MESSAGE(std::string(part) + " in " + json, json.find(part) != std::string::npos);
    }

    void events() {
        const std::deque<LoggedEvent> ev = some_events();
        CPPUNIT_ASSERT_EQUAL(std::string("T1764779038123456 acquire n1 198.18.0.101/24: preferred node n1 is back "
                                         "(failback)\n"
                                         "T1764779039000000 dns_failed - -: server answered \"REFUSED\"\ttab\n"),
                             events_text(ev, fake_wall_time));
        CPPUNIT_ASSERT_EQUAL(std::string(kEventsJson), events_json(ev));
        CPPUNIT_ASSERT_EQUAL(std::string(), events_text({}, fake_wall_time));
        CPPUNIT_ASSERT_EQUAL(std::string("[]\n"), events_json({}));
    }
};

}  // namespace

CPPUNIT_TEST_SUITE_REGISTRATION(StatusViewTest);

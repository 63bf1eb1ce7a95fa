package streamdownloads_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stream-downloads/caddy-stream-downloads/internal/testcaddy"
	"github.com/stream-downloads/caddy-stream-downloads/internal/testutil"
)

// The fleet harness (issue 14): one versitygw, one HLS origin over copies of the demo video,
// and N Caddy processes (the project's binary, so one can be SIGKILLed), each with its own
// port and storage_dir, all with the same `store s3` block (but their own node name) and
// the same public_url, as behind a load balancer.

const (
	// fleetLease is the lease of the test fleets: short, so takeovers come quickly.
	fleetLease = 3 * time.Second
	// fleetStaleness is the documented bound on the state a node caches (issue 14, point 3).
	fleetStaleness = 2 * time.Second
	// fleetPublicURL is every node's public_url, so the API's url fields are the same
	// whichever node answers.
	fleetPublicURL = "http://downloads.fleet.test"
)

// fleet is a running test fleet.
type fleet struct {
	t      *testing.T
	bin    string
	s3     *testutil.S3Server
	origin *testutil.Origin
	nodes  []*fleetNode
}

// fleetNode is one Caddy process of a fleet; its edge gives the API helpers.
type fleetNode struct {
	*edge
	f    *fleet
	name string
	proc *testcaddy.Process // nil when not running
	logs []string           // of the runs that ended
}

// startFleet starts a versitygw, an origin serving the demo under each of videos, and n
// nodes sharing the bucket; extra goes into every node's stream_downloads block. Each node
// has answered an API request when it returns.
func startFleet(t *testing.T, n int, videos []string, extra string) *fleet {
	t.Helper()
	f := &fleet{t: t, bin: testcaddy.Binary(t), s3: testutil.StartS3Server(t)}
	f.origin = testutil.NewOrigin(t, demoCopies(t, videos...))
	for i := range n {
		name := fmt.Sprintf("node%d", i+1)
		block := fmt.Sprintf("\t\tpublic_url %s\n%s\t\tstore s3 {\n\t\t\tendpoint %s\n\t\t\tbucket %s\n\t\t\taccess_key %s\n\t\t\tsecret_key %s\n\t\t\tpath_style\n\t\t\tlease %s\n\t\t\tnode %s\n\t\t}\n",
			fleetPublicURL, extra, f.s3.Endpoint, f.s3.Bucket, f.s3.AccessKey, f.s3.SecretKey, fleetLease, name)
		f.nodes = append(f.nodes, &fleetNode{edge: newEdge(t, f.origin.URL+"/{video_id}/master.m3u8", block), f: f, name: name})
	}
	for _, nd := range f.nodes {
		nd.start()
	}
	t.Cleanup(f.checkLogs)
	return f
}

// start runs the node's process and waits until its API answers.
func (nd *fleetNode) start() {
	nd.t.Helper()
	nd.proc = testcaddy.StartProcess(nd.t, nd.f.bin, nd.cfg, nd.addr())
	deadline := time.Now().Add(20 * time.Second)
	for {
		req, _ := http.NewRequest("GET", nd.base+"/acct/stream/harness-probe/downloads", nil)
		req.Header.Set("Authorization", "Bearer "+apiToken)
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		if time.Now().After(deadline) {
			nd.t.Fatalf("%s: the API does not answer (last: %v %v)\n%s", nd.name, resp, err, nd.proc.Logs())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// kill SIGKILLs the node's process.
func (nd *fleetNode) kill() {
	if nd.proc == nil {
		return
	}
	nd.proc.Kill()
	nd.logs = append(nd.logs, nd.proc.Logs())
	nd.proc = nil
	// Keep-alive connections to the dead process would fail the next request.
	http.DefaultTransport.(*http.Transport).CloseIdleConnections()
}

// running returns the nodes whose process runs.
func (f *fleet) running() []*fleetNode {
	var out []*fleetNode
	for _, nd := range f.nodes {
		if nd.proc != nil {
			out = append(out, nd)
		}
	}
	return out
}

// checkLogs fails the test on a panic in any node's log, and shows the logs of a failed test.
func (f *fleet) checkLogs() {
	for _, nd := range f.nodes {
		logs := nd.logs
		if nd.proc != nil {
			logs = append(logs, nd.proc.Logs())
		}
		for i, l := range logs {
			if strings.Contains(strings.ToLower(l), "panic") {
				f.t.Errorf("%s run %d logged a panic:\n%s", nd.name, i, l)
			}
			if f.t.Failed() {
				f.t.Logf("%s run %d log (last 40 lines):\n%s", nd.name, i, tail(l, 40))
			}
		}
	}
}

// post creates video's default download on the node and returns its entry.
func (nd *fleetNode) post(video string) entry {
	nd.t.Helper()
	code, env := nd.call("POST", "/acct/stream/"+video+"/downloads")
	if code != http.StatusOK {
		nd.t.Fatalf("%s: POST %s: %d %+v", nd.name, video, code, env.Errors)
	}
	return env.Result["default"]
}

// apiState is what must be the same on every node: the answer's status code, the entry
// (percentComplete only when ready or asked) and the errors.
type apiState struct {
	Code    int
	Entry   entry
	Percent float64
	Errors  string
}

func (nd *fleetNode) state(video string, withPercent bool) apiState {
	nd.t.Helper()
	code, env := nd.call("GET", "/acct/stream/"+video+"/downloads")
	errs, _ := json.Marshal(env.Errors)
	s := apiState{Code: code, Entry: env.Result["default"], Errors: string(errs)}
	if s.Entry.PercentComplete != nil && (withPercent || s.Entry.Status == "ready") {
		s.Percent = *s.Entry.PercentComplete
	}
	s.Entry.PercentComplete = nil
	return s
}

// sameStateEverywhere polls the running nodes until they all answer the same state of video
// (within the staleness bound and a margin), and returns it.
func (f *fleet) sameStateEverywhere(video string, withPercent bool) apiState {
	f.t.Helper()
	deadline := time.Now().Add(fleetStaleness + 3*time.Second)
	for {
		var states []apiState
		for _, nd := range f.running() {
			states = append(states, nd.state(video, withPercent))
		}
		same := true
		for _, s := range states[1:] {
			same = same && reflect.DeepEqual(s, states[0])
		}
		if same {
			return states[0]
		}
		if time.Now().After(deadline) {
			f.t.Fatalf("%s: the nodes disagree for longer than the staleness bound: %+v", video, states)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// waitReadyAll waits until video is ready on every running node (tolerating 503 answers for
// up to timeout, e.g. while the bucket comes back) and returns the ready entry.
func (f *fleet) waitReadyAll(video string, timeout time.Duration) entry {
	f.t.Helper()
	deadline := time.Now().Add(timeout)
	for _, nd := range f.running() {
		for {
			resp, body := nd.send("GET", "/acct/stream/"+video+"/downloads", apiToken)
			var env envelope
			if resp.StatusCode == http.StatusOK {
				if err := json.Unmarshal(body, &env); err != nil {
					f.t.Fatalf("%s: %v in %s", nd.name, err, body)
				}
				en := env.Result["default"]
				if en.Status == "ready" {
					break
				}
				if en.Status != "inprogress" {
					f.t.Fatalf("%s: %s ended %s: %s %s", nd.name, video, en.Status, en.ErrorReasonCode, en.ErrorReasonText)
				}
			} else if resp.StatusCode != http.StatusServiceUnavailable {
				f.t.Fatalf("%s: GET %s: %d %s", nd.name, video, resp.StatusCode, body)
			}
			if time.Now().After(deadline) {
				f.t.Fatalf("%s: %s not ready after %v (last: %d %s)", nd.name, video, timeout, resp.StatusCode, body)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	return f.sameStateEverywhere(video, true).Entry
}

// fileURL is the node's address of the file an entry's url names (the url is public_url's).
func (nd *fleetNode) fileURL(en entry) string {
	nd.t.Helper()
	u, err := url.Parse(en.URL)
	if err != nil || !strings.HasPrefix(en.URL, fleetPublicURL+"/") {
		nd.t.Fatalf("url %q is not under public_url %s", en.URL, fleetPublicURL)
	}
	return nd.base + u.Path
}

// fetched is one delivery answer.
type fetched struct {
	code                      int
	etag, length, rng, accept string
	body                      []byte
}

// getFile GETs url with the given request headers ("Range", "If-Range", …).
func getFile(t *testing.T, url string, headers ...string) fetched {
	t.Helper()
	req, err := http.NewRequest("GET", url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s %v: %v after %d bytes", url, headers, err, len(body))
	}
	return fetched{resp.StatusCode, resp.Header.Get("ETag"), resp.Header.Get("Content-Length"),
		resp.Header.Get("Content-Range"), resp.Header.Get("Accept-Ranges"), body}
}

// sameEverywhere fails unless every node serves en's file as 200 with want's bytes and
// one strong ETag (of its own: the same bytes under another id have another ETag).
func sameEverywhere(t *testing.T, nodes []*fleetNode, en entry, want []byte, what string) {
	t.Helper()
	etag := ""
	for _, nd := range nodes {
		got := getFile(t, nd.fileURL(en))
		if etag == "" {
			etag = got.etag
		}
		if got.code != http.StatusOK || got.etag != etag || !strongETag.MatchString(got.etag) || !bytes.Equal(got.body, want) {
			t.Errorf("%s on %s: %d ETag %s (first node's %s), %d bytes; want 200, one ETag, %d bytes the same",
				what, nd.name, got.code, got.etag, etag, len(got.body), len(want))
		}
	}
}

// compareFetched fails unless got equals want (status, ETag, lengths, ranges and bytes).
func compareFetched(t *testing.T, what string, got, want fetched) {
	t.Helper()
	if got.code != want.code || got.etag != want.etag || got.length != want.length || got.rng != want.rng ||
		got.accept != want.accept || !bytes.Equal(got.body, want.body) {
		t.Errorf("%s: %d ETag %s length %s range %q (%d bytes); want %d ETag %s length %s range %q (%d bytes)",
			what, got.code, got.etag, got.length, got.rng, len(got.body), want.code, want.etag, want.length, want.rng, len(want.body))
	}
}

// segmentCounts returns how often the origin served each 240p segment of video (the rendition
// "default" packages) and how many other segment requests it had for it.
func (f *fleet) segmentCounts(video string) (counts []int, others int) {
	for _, seg := range testutil.DemoSegments(f.t) {
		counts = append(counts, f.origin.Count("/"+video+"/240p/"+filepath.Base(seg)))
	}
	for path, n := range f.origin.Counts() {
		if strings.HasPrefix(path, "/"+video+"/") && strings.HasSuffix(path, ".ts") && !strings.HasPrefix(path, "/"+video+"/240p/") {
			others += n
		}
	}
	return counts, others
}

// waitHeld waits until a segment request is held at the origin and returns its path.
func (f *fleet) waitHeld() string {
	f.t.Helper()
	select {
	case p := <-f.origin.Held:
		return p
	case <-time.After(30 * time.Second):
		f.t.Fatal("no segment request reached the origin within 30 s")
		return ""
	}
}

// originConns returns the established TCP connections from the running nodes to the origin:
// the socket inode of each, with the node whose process holds it (read from /proc; a node's
// pid is the owner of its listening socket).
func (f *fleet) originConns() map[string]*fleetNode {
	f.t.Helper()
	ou, err := url.Parse(f.origin.URL)
	if err != nil {
		f.t.Fatal(err)
	}
	originPort, _ := strconv.Atoi(ou.Port())
	toOrigin := socketInodes(func(_, remote int, state string) bool { return remote == originPort && state == "01" })
	conns := map[string]*fleetNode{}
	for _, nd := range f.running() {
		port, _ := strconv.Atoi(nd.addr()[strings.LastIndex(nd.addr(), ":")+1:])
		listen := socketInodes(func(local, _ int, state string) bool { return local == port && state == "0A" })
		for _, pid := range socketOwners(listen) {
			for _, inode := range socketsOf(pid) {
				if toOrigin[inode] {
					conns[inode] = nd
				}
			}
		}
	}
	return conns
}

// packagingNodes returns the nodes with a connection to the origin that is not in before (an
// earlier originConns): while a segment is held, the node fetching it. When no connection is
// new (the fetch reused a kept-alive one), it returns every node connected to the origin.
func (f *fleet) packagingNodes(before map[string]*fleetNode) []*fleetNode {
	f.t.Helper()
	after := f.originConns()
	pick := func(onlyNew bool) []*fleetNode {
		var out []*fleetNode
		for inode, nd := range after {
			if _, old := before[inode]; (!onlyNew || !old) && !slices.Contains(out, nd) {
				out = append(out, nd)
			}
		}
		return out
	}
	if nodes := pick(true); len(nodes) > 0 {
		return nodes
	}
	return pick(false)
}

// socketInodes returns the inodes of the TCP sockets (v4 and v6) that match.
func socketInodes(match func(localPort, remotePort int, state string) bool) map[string]bool {
	inodes := map[string]bool{}
	for _, file := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		data, err := os.ReadFile(file)
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(data), "\n")[1:] {
			fs := strings.Fields(line)
			if len(fs) < 10 {
				continue
			}
			port := func(addr string) int {
				n, _ := strconv.ParseInt(addr[strings.LastIndex(addr, ":")+1:], 16, 32)
				return int(n)
			}
			if match(port(fs[1]), port(fs[2]), fs[3]) {
				inodes[fs[9]] = true
			}
		}
	}
	return inodes
}

// socketOwners returns the pids of the processes holding one of inodes.
func socketOwners(inodes map[string]bool) []int {
	dirs, _ := filepath.Glob("/proc/[0-9]*")
	var out []int
	for _, d := range dirs {
		pid, err := strconv.Atoi(filepath.Base(d))
		if err != nil {
			continue
		}
		for _, inode := range socketsOf(pid) {
			if inodes[inode] {
				out = append(out, pid)
				break
			}
		}
	}
	return out
}

// socketsOf returns the inodes of the sockets process pid has open.
func socketsOf(pid int) []string {
	fds, _ := filepath.Glob(fmt.Sprintf("/proc/%d/fd/*", pid))
	var out []string
	for _, fd := range fds {
		if link, err := os.Readlink(fd); err == nil && strings.HasPrefix(link, "socket:[") {
			out = append(out, strings.TrimSuffix(strings.TrimPrefix(link, "socket:["), "]"))
		}
	}
	return out
}

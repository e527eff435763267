// The demo application of Ramp's real-node tests (docs/real-node.md): a static binary in a
// FROM scratch image, configured by its environment.
//
//	PORT            port to serve on (default 8080)
//	VERSION         what GET / answers (default "v1")
//	ERROR_RATIO     share of GET / answered 500, 0..1 (default 0)
//	LATENCY         time GET / takes before answering, a Go duration (default 0)
//	READY_DELAY     /ready answers 503 for this long after start (default 0)
//	READY_FAIL      "true": /ready always answers 503 (the readiness probe never passes)
//	SHUTDOWN_DELAY  on SIGTERM, /ready answers 503 and requests are still served for this
//	                long before the server drains and exits 0 (default 1s)
//
// GET /metrics serves Prometheus text: http_requests_total{code} and
// http_request_duration_seconds_{sum,count}{code} of its own GET / requests.
//
// With the argument "pause" it only waits for SIGTERM or SIGINT (the pod sandbox image).
// With the argument "smoke" it is its own smoke test (a check Job's container): it serves
// on a loopback port with the configuration above, waits for /ready (10 s at most), sends
// 20 GET /, prints what they answered and exits 0 when every answer was 2xx, else 1.
package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/signal"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

type stats struct {
	mu       sync.Mutex
	count    map[int]uint64
	duration map[int]float64
}

func (s *stats) add(code int, d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.count[code]++
	s.duration[code] += d.Seconds()
}

func (s *stats) write(w http.ResponseWriter) {
	s.mu.Lock()
	defer s.mu.Unlock()
	codes := make([]int, 0, len(s.count))
	for c := range s.count {
		codes = append(codes, c)
	}
	sort.Ints(codes)
	w.Header().Set("Content-Type", "text/plain; version=0.0.4")
	fmt.Fprintln(w, "# HELP http_requests_total Requests to / by response code.")
	fmt.Fprintln(w, "# TYPE http_requests_total counter")
	for _, c := range codes {
		fmt.Fprintf(w, "http_requests_total{code=\"%d\"} %d\n", c, s.count[c])
	}
	fmt.Fprintln(w, "# HELP http_request_duration_seconds Time to answer / by response code.")
	fmt.Fprintln(w, "# TYPE http_request_duration_seconds summary")
	for _, c := range codes {
		fmt.Fprintf(w, "http_request_duration_seconds_sum{code=\"%d\"} %g\n", c, s.duration[c])
		fmt.Fprintf(w, "http_request_duration_seconds_count{code=\"%d\"} %d\n", c, s.count[c])
	}
}

func env(name, def string) string {
	if v, ok := os.LookupEnv(name); ok && v != "" {
		return v
	}
	return def
}

func duration(name string) time.Duration {
	d, err := time.ParseDuration(env(name, "0s"))
	if err != nil || d < 0 {
		fmt.Fprintf(os.Stderr, "demoapp: %s=%q is not a duration (e.g. 250ms)\n", name, os.Getenv(name))
		os.Exit(2)
	}
	return d
}

func waitSignal() os.Signal {
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, syscall.SIGTERM, syscall.SIGINT)
	return <-ch
}

func main() {
	if len(os.Args) > 1 && os.Args[1] == "pause" {
		waitSignal()
		return
	}
	version := env("VERSION", "v1")
	ratio, err := strconv.ParseFloat(env("ERROR_RATIO", "0"), 64)
	if err != nil || ratio < 0 || ratio > 1 {
		fmt.Fprintf(os.Stderr, "demoapp: ERROR_RATIO=%q is not a number in 0..1\n", os.Getenv("ERROR_RATIO"))
		os.Exit(2)
	}
	latency, readyDelay, shutdownDelay := duration("LATENCY"), duration("READY_DELAY"), duration("SHUTDOWN_DELAY")
	if os.Getenv("SHUTDOWN_DELAY") == "" {
		shutdownDelay = time.Second
	}
	readyFail := env("READY_FAIL", "false") == "true"
	started := time.Now()
	var stopping atomic.Bool
	st := &stats{count: map[int]uint64{}, duration: map[int]float64{}}

	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		begin := time.Now()
		time.Sleep(latency)
		code := http.StatusOK
		if ratio > 0 && rand.Float64() < ratio {
			code = http.StatusInternalServerError
		}
		w.WriteHeader(code)
		fmt.Fprintln(w, version)
		st.add(code, time.Since(begin))
	})
	mux.HandleFunc("/ready", func(w http.ResponseWriter, r *http.Request) {
		if readyFail || stopping.Load() || time.Since(started) < readyDelay {
			w.WriteHeader(http.StatusServiceUnavailable)
			fmt.Fprintln(w, "not ready")
			return
		}
		fmt.Fprintln(w, "ready")
	})
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) { fmt.Fprintln(w, "ok") })
	mux.HandleFunc("/metrics", func(w http.ResponseWriter, r *http.Request) { st.write(w) })

	if len(os.Args) > 1 && os.Args[1] == "smoke" {
		os.Exit(smoke(version, mux))
	}
	srv := &http.Server{Addr: ":" + env("PORT", "8080"), Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		sig := waitSignal()
		stopping.Store(true)
		fmt.Printf("demoapp %s: %s, draining for %s\n", version, sig, shutdownDelay)
		time.Sleep(shutdownDelay)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
	}()
	fmt.Printf("demoapp %s: serving on %s (error ratio %g, latency %s, ready delay %s, ready fail %t)\n",
		version, srv.Addr, ratio, latency, readyDelay, readyFail)
	if err := srv.ListenAndServe(); err != http.ErrServerClosed {
		fmt.Fprintf(os.Stderr, "demoapp: %v\n", err)
		os.Exit(1)
	}
	// The kubelet reads this as the terminated container's message: proof of a graceful stop.
	msg := fmt.Sprintf("graceful: drained %s after SIGTERM, %d requests served", shutdownDelay, st.total())
	_ = os.WriteFile("/dev/termination-log", []byte(msg), 0o644)
	fmt.Println("demoapp " + version + ": " + msg)
}

func (s *stats) total() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	var n uint64
	for _, c := range s.count {
		n += c
	}
	return n
}

// smoke serves mux on a loopback port and judges it: 0 when /ready came up and all of 20
// GET / answered 2xx, else 1; the summary is the termination message.
func smoke(version string, mux *http.ServeMux) int {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Fprintf(os.Stderr, "demoapp smoke: %v\n", err)
		return 1
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	base := "http://" + ln.Addr().String()
	client := &http.Client{Timeout: 5 * time.Second}
	get := func(path string) int {
		rsp, err := client.Get(base + path)
		if err != nil {
			return 0
		}
		_ = rsp.Body.Close()
		return rsp.StatusCode
	}
	deadline := time.Now().Add(10 * time.Second)
	for get("/ready") != http.StatusOK {
		if time.Now().After(deadline) {
			return finish(1, fmt.Sprintf("smoke %s: /ready never answered 200 in 10s", version))
		}
		time.Sleep(100 * time.Millisecond)
	}
	codes := map[int]int{}
	bad := 0
	for i := 0; i < 20; i++ {
		code := get("/")
		codes[code]++
		if code < 200 || code > 299 {
			bad++
		}
	}
	msg := fmt.Sprintf("smoke %s: 20 GET / answered %v, %d not 2xx", version, codes, bad)
	if bad > 0 {
		return finish(1, msg)
	}
	return finish(0, msg)
}

func finish(code int, msg string) int {
	fmt.Println(msg)
	_ = os.WriteFile("/dev/termination-log", []byte(msg), 0o644)
	return code
}

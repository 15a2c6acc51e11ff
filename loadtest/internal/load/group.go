package load

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
	"golang.org/x/time/rate"

	"github.com/adred-codev/ws_poc/loadtest/internal/frame"
	"github.com/adred-codev/ws_poc/loadtest/internal/latency"
	"github.com/adred-codev/ws_poc/loadtest/internal/sequence"
)

// readLimit is the largest frame a client accepts: far above WS_BATCH_MAX_BYTES, so a
// server that batches more than it should is measured, not disconnected.
const readLimit = 16 << 20

// shardCount spreads the latency histograms so concurrent readers rarely share a lock; a
// reader takes its shard's lock once per frame, not per message.
const shardCount = 32

// subscribeID is the id of every subscribe request; one request per connection.
const subscribeID = "lt"

// authID is the id of the auth request a connection sends before its subscribe when the
// scenario has a token.
const authID = "a"

// opAuthed is the op of the reply to a valid token.
var opAuthed = []byte("authed")

// Auth states of a connection (Scenario.Token); only its reader touches them.
const (
	authNone    uint8 = iota // no token sent: the subscribed reply alone subscribes
	authPending              // auth and subscribe sent, neither reply read
	authHeld                 // subscribed read before authed: subscribed once authed comes
	authDone                 // authed
	authRefused              // an error reply to the auth: the connection failed
)

// group runs the connections [From, To) of a plan in this process.
type group struct {
	plan      Plan
	sc        *Scenario
	dialers   *dialers
	extractor *frame.Extractor
	names     []string // channel names by index
	bufs      sync.Pool
	// authMsg is the auth request every connection sends first; nil without a token.
	authMsg []byte

	shards [shardCount]shard
	conns  []connState

	connected, subscribed, failed, dropped, settled atomic.Int64
	// awaiting counts failover A clients subscribed on A whose resume has not ended; left
	// those whose A connection ended; resumed those whose resume ended (either way).
	awaiting, left, resumed atomic.Int64

	mu        sync.Mutex // guards the fields below
	open      map[*websocket.Conn]struct{}
	closing   bool
	failures  map[string]int64
	drops     map[string]int64
	handshake *latency.Histogram
	subscribe *latency.Histogram
	firstDial int64
	lastSub   int64
	fo        *foGroup // failover runs only

	slotMu sync.Mutex // guards slots; taken inside a shard lock
	slots  map[int64]*latency.Histogram

	// throttled counts the group's throttled clients; ages and behind are their samples by
	// slot, owned by the sampler goroutine until the group's goroutines have ended.
	throttled    int
	ages, behind map[int64]*latency.Histogram
}

type shard struct {
	mu       sync.Mutex
	interval *latency.Histogram
	steps    []StepResult
	received int64
	unparsed int64
	// thReceived and thLatency are the throttled clients' messages, apart from the rest.
	thReceived int64
	thLatency  *latency.Histogram
}

func (s *shard) step(i int) *StepResult {
	if i < 0 {
		i = 0
	}
	for len(s.steps) <= i {
		s.steps = append(s.steps, StepResult{Latency: latency.New()})
	}
	return &s.steps[i]
}

// connState is one connection's accounting; only its own goroutine touches it until the
// group's goroutines have all ended.
type connState struct {
	channels   []int
	trackers   []sequence.Tracker
	slow       bool
	subscribed bool
	dropped    bool
	auth       uint8    // authNone unless the scenario has a token
	fo         *foState // failover runs only
	th         *thState // throttled clients only
}

// awaitingAuthed reports whether the connection sent a token and has had no reply to it.
func (cs *connState) awaitingAuthed() bool {
	return cs.auth == authPending || cs.auth == authHeld
}

func newGroup(plan Plan) (*group, error) {
	sc := &plan.Scenario
	var throttleRate float64
	if sc.ThrottleFraction > 0 {
		throttleRate = sc.ThrottleBytesPerSec
	}
	d, err := newDialers(sc.SourceAddrs, sc.HandshakeTimeout.D(), throttleRate)
	if err != nil {
		return nil, err
	}
	g := &group{
		plan:      plan,
		sc:        sc,
		dialers:   d,
		conns:     make([]connState, plan.To-plan.From),
		failures:  map[string]int64{},
		drops:     map[string]int64{},
		open:      map[*websocket.Conn]struct{}{},
		handshake: latency.New(),
		subscribe: latency.New(),
		bufs:      sync.Pool{New: func() any { return new(bytes.Buffer) }},
	}
	if sc.Generic() {
		unit := sc.TsUnit
		if unit == "" {
			unit = "ns"
		}
		if g.extractor, err = frame.NewExtractor(sc.TsPath, unit, sc.ChannelPath, sc.SeqPath); err != nil {
			return nil, err
		}
	}
	if sc.Token != "" {
		req := struct {
			Op    string `json:"op"`
			ID    string `json:"id"`
			Token string `json:"token"`
		}{Op: "auth", ID: authID, Token: sc.Token}
		if g.authMsg, err = json.Marshal(req); err != nil {
			return nil, fmt.Errorf("encode auth: %w", err)
		}
	}
	for i := range sc.Channels {
		g.names = append(g.names, sc.ChannelName(i))
	}
	for i := range g.shards {
		g.shards[i].interval = latency.New()
		g.shards[i].thLatency = latency.New()
	}
	if sc.Failover != nil {
		g.fo = newFoGroup()
		g.slots = map[int64]*latency.Histogram{}
	}
	g.ages, g.behind = map[int64]*latency.Histogram{}, map[int64]*latency.Histogram{}
	pop := sc.Popularity()
	for k := range g.conns {
		idx := plan.From + k
		cs := &g.conns[k]
		cs.channels = pop.Pick(idx)
		cs.slow = isSlow(idx, sc.SlowFraction)
		if isSlow(idx, sc.ThrottleFraction) {
			// Throttled clients are spread over the indexes as slow ones are (a run has
			// one kind or the other), on the hottest channels.
			cs.channels = throttledChannels(sc.throttleSubs())
			cs.th = newThState(len(cs.channels))
			g.throttled++
		}
		cs.trackers = make([]sequence.Tracker, len(cs.channels))
		if sc.Failover != nil {
			cs.fo = &foState{standby: idx >= sc.Conns}
		}
	}
	return g, nil
}

// isSlow spreads exactly floor(n*f) slow (or throttled) connections evenly over the
// indexes.
func isSlow(i int, f float64) bool {
	if f <= 0 {
		return false
	}
	return math.Floor(float64(i+1)*f) > math.Floor(float64(i)*f)
}

// run opens the connections, reports progress through report about once a second (and at
// once when every connection has subscribed or failed), and on stop (or ctx end) closes
// them all and returns the figures.
func (g *group) run(ctx context.Context, stop <-chan struct{}, report func(Progress)) *GroupResult {
	connCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		g.ramp(connCtx, &wg)
	}()
	if g.throttled > 0 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			g.sample(connCtx)
		}()
	}

	total := int64(len(g.conns))
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	lastReport := time.Now()
	wasReady := false
loop:
	for {
		select {
		case <-stop:
			break loop
		case <-ctx.Done():
			break loop
		case now := <-tick.C:
			ready := g.settled.Load() >= total
			if now.Sub(lastReport) >= time.Second || (ready && !wasReady) {
				report(g.progress(ready))
				lastReport, wasReady = now, ready
			}
		}
	}
	cancel()
	g.closeAll()
	wg.Wait()
	g.dialers.close()
	return g.result()
}

func (g *group) ramp(ctx context.Context, wg *sync.WaitGroup) {
	limit := rate.Inf
	if g.plan.RampRate > 0 {
		limit = rate.Limit(g.plan.RampRate)
	}
	lim := rate.NewLimiter(limit, 1)
	// sem bounds concurrent handshakes: its size is the point (Scenario.Inflight).
	sem := make(chan struct{}, g.sc.Inflight)
	for k := range g.conns {
		if err := lim.Wait(ctx); err != nil {
			g.abandon(len(g.conns) - k)
			return
		}
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			g.abandon(len(g.conns) - k)
			return
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			g.runConn(ctx, k, sem)
		}()
	}
}

// abandon counts connections never attempted because the run ended first.
func (g *group) abandon(n int) {
	g.fail("not_attempted", int64(n))
}

func (g *group) fail(cause string, n int64) {
	g.failed.Add(n)
	g.settled.Add(n)
	g.mu.Lock()
	g.failures[cause] += n
	g.mu.Unlock()
}

func (g *group) runConn(ctx context.Context, k int, sem <-chan struct{}) {
	idx := g.plan.From + k
	cs := &g.conns[k]
	start := time.Now()
	g.mu.Lock()
	if g.firstDial == 0 {
		g.firstDial = start.UnixNano()
	}
	g.mu.Unlock()

	url := g.sc.URL
	if cs.fo != nil && cs.fo.standby {
		url = g.sc.Failover.URL
	}
	hctx, hcancel := context.WithTimeout(ctx, g.sc.HandshakeTimeout.D())
	kind := dialFast
	switch {
	case cs.slow:
		kind = dialSlow
	case cs.th != nil:
		kind = dialThrottled
	}
	c, resp, err := websocket.Dial(hctx, url, &websocket.DialOptions{HTTPClient: g.dialers.pick(idx, kind)})
	hcancel()
	<-sem
	if err != nil {
		g.fail(dialCause(ctx, resp, err), 1)
		return
	}
	if left := g.serve(ctx, c, k, idx, cs, start); left != nil {
		g.failover(ctx, k, idx, cs, left)
	}
}

// serve runs connection c from the handshake to its end and closes it. It returns the
// error that ended a failover A client's connection (nil otherwise): the client resumes
// on B.
func (g *group) serve(ctx context.Context, c *websocket.Conn, k, idx int, cs *connState, start time.Time) error {
	defer c.CloseNow()
	if !g.track(c) {
		g.fail("canceled", 1)
		return nil
	}
	defer g.untrack(c)
	if cs.th != nil {
		defer cs.th.live.Store(false) // no longer sampled: what it holds is the run's end
	}
	c.SetReadLimit(readLimit)
	g.connected.Add(1)
	g.mu.Lock()
	g.handshake.Record(time.Since(start))
	g.mu.Unlock()

	subStart := time.Now()
	if err := g.sendSubscribe(ctx, c, idx, cs); err != nil {
		g.fail(closeCause(ctx, err), 1)
		return nil
	}
	if g.extractor != nil {
		// Another server's subscribe has no reply we know of: sent counts as subscribed.
		g.markSubscribed(cs, subStart)
	}
	code, err := g.read(ctx, c, k, cs, subStart)
	switch {
	case code != "" && cs.auth == authRefused:
		g.fail("auth_error_"+code, 1)
	case code != "":
		g.fail("subscribe_error_"+code, 1)
	case err == nil:
		// A slow consumer: the run ended.
	case cs.fo != nil && cs.fo.stage == stageOnA && !cs.fo.standby && ctx.Err() == nil:
		return err
	default:
		g.ended(ctx, cs, err)
	}
	return nil
}

func (g *group) sendSubscribe(ctx context.Context, c *websocket.Conn, idx int, cs *connState) error {
	wctx, cancel := context.WithTimeout(ctx, g.sc.SubscribeTimeout.D())
	defer cancel()
	if g.authMsg != nil {
		// The token first; the subscribe follows at once, without waiting for authed: the
		// server answers in request order, and a client that waited would pay a round trip.
		cs.auth = authPending
		if err := c.Write(wctx, websocket.MessageText, g.authMsg); err != nil {
			return err
		}
	}
	if len(g.sc.Send) == 0 {
		req := struct {
			Op         string   `json:"op"`
			ID         string   `json:"id"`
			Channels   []string `json:"channels"`
			Positioned bool     `json:"positioned,omitempty"`
			Conflate   string   `json:"conflate,omitempty"`
		}{Op: "subscribe", ID: subscribeID, Positioned: cs.fo != nil}
		if cs.th != nil {
			req.Conflate = g.sc.ThrottleConflate
		}
		for _, ch := range cs.channels {
			req.Channels = append(req.Channels, g.names[ch])
		}
		b, err := json.Marshal(req)
		if err != nil {
			return fmt.Errorf("encode subscribe: %w", err)
		}
		return c.Write(wctx, websocket.MessageText, b)
	}
	for _, tmpl := range g.sc.Send {
		if err := c.Write(wctx, websocket.MessageText, []byte(g.expand(tmpl, idx, cs))); err != nil {
			return err
		}
	}
	return nil
}

// expand substitutes {channels}, {channel} and {conn} in a --send text.
func (g *group) expand(tmpl string, idx int, cs *connState) string {
	names := make([]string, len(cs.channels))
	for i, ch := range cs.channels {
		names[i] = g.names[ch]
	}
	arr, _ := json.Marshal(names) // a []string always encodes
	return strings.NewReplacer(
		"{channels}", string(arr),
		"{channel}", names[0],
		"{conn}", strconv.Itoa(idx),
	).Replace(tmpl)
}

func (g *group) markSubscribed(cs *connState, since time.Time) {
	cs.subscribed = true
	if cs.th != nil {
		cs.th.live.Store(true)
	}
	now := time.Now()
	g.subscribed.Add(1)
	g.settled.Add(1)
	g.mu.Lock()
	if !since.IsZero() {
		g.subscribe.Record(now.Sub(since))
	}
	if n := now.UnixNano(); n > g.lastSub {
		g.lastSub = n
	}
	g.mu.Unlock()
}

// read is the connection's receive loop until the run ends or the connection does. It
// returns the error that ended the connection (nil when the run ended a slow consumer),
// or the error code of a refused subscribe (or resume).
func (g *group) read(ctx context.Context, c *websocket.Conn, k int, cs *connState, subStart time.Time) (string, error) {
	sh := &g.shards[k%shardCount]
	for {
		// Once subscribed, a read lasts as long as the run: closeAll ends it.
		rctx := context.Background()
		var cancel context.CancelFunc
		if !cs.subscribed || (cs.fo != nil && cs.fo.stage == stageResuming) {
			// Waiting for the subscribed reply is bounded.
			rctx, cancel = context.WithDeadline(ctx, subStart.Add(g.sc.SubscribeTimeout.D()))
		}
		_, r, err := c.Reader(rctx)
		var buf *bytes.Buffer
		if err == nil {
			buf = g.bufs.Get().(*bytes.Buffer)
			buf.Reset()
			_, err = buf.ReadFrom(r)
		}
		if cancel != nil {
			cancel()
		}
		if err != nil {
			if buf != nil {
				g.bufs.Put(buf)
			}
			return "", err
		}
		var before int64
		if cs.th != nil {
			before = cs.th.messages
		}
		failCode := g.handle(sh, cs, buf.Bytes(), subStart)
		if cs.th != nil {
			cs.th.read(buf.Len(), time.Now().UnixNano(), cs.th.messages > before)
		}
		g.bufs.Put(buf)
		if failCode != "" {
			return failCode, nil
		}
		if cs.subscribed && cs.slow {
			// A slow consumer stops reading once subscribed and waits for the end of the run
			// with its socket unread.
			<-ctx.Done()
			return "", nil
		}
	}
}

// track registers an open connection so closeAll can end its read; false when the run is
// already ending.
func (g *group) track(c *websocket.Conn) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closing {
		return false
	}
	g.open[c] = struct{}{}
	return true
}

func (g *group) untrack(c *websocket.Conn) {
	g.mu.Lock()
	delete(g.open, c)
	g.mu.Unlock()
}

// closeAll ends every open connection at the end of the run. Reads after the subscribe use
// no context (coder/websocket arms a timer per read for a cancellable one, a sixth of the
// client's CPU), so closing the socket is what ends them.
func (g *group) closeAll() {
	g.mu.Lock()
	g.closing = true
	open := make([]*websocket.Conn, 0, len(g.open))
	for c := range g.open {
		open = append(open, c)
	}
	g.mu.Unlock()
	for _, c := range open {
		c.CloseNow()
	}
}

// ended classifies the end of a connection's receive loop.
func (g *group) ended(ctx context.Context, cs *connState, err error) {
	if ctx.Err() != nil {
		if !cs.subscribed {
			g.fail("canceled", 1)
		}
		return
	}
	cause := closeCause(ctx, err)
	if !cs.subscribed {
		if cause == "timeout" {
			cause = "subscribe_timeout"
		}
		g.fail(cause, 1)
		return
	}
	if cs.th != nil {
		// A throttled client cut is a figure of its own (Result.Throttled), not a drop:
		// without conflation the server is expected to cut it.
		cs.th.cut = cause
		return
	}
	cs.dropped = true
	g.dropped.Add(1)
	g.mu.Lock()
	g.drops[cause]++
	g.mu.Unlock()
}

// handle accounts for one frame; it returns an error code when the subscribe (or the auth:
// cs.auth is then authRefused) was refused.
func (g *group) handle(sh *shard, cs *connState, b []byte, subStart time.Time) string {
	now := time.Now().UnixNano()
	if g.extractor != nil {
		return g.handleGeneric(sh, cs, b, now)
	}
	var f frame.Fields
	sh.mu.Lock()
	defer sh.mu.Unlock()
	for len(b) > 0 {
		var line []byte
		if i := bytes.IndexByte(b, '\n'); i >= 0 {
			line, b = b[:i], b[i+1:]
		} else {
			line, b = b, nil
		}
		frame.Scan(line, &f)
		switch f.Kind {
		case frame.Message:
			g.account(sh, cs, &f, now)
			if cs.fo != nil {
				cs.fo.message(&f)
			}
		case frame.Subscribed:
			if cs.fo != nil {
				g.foSubscribed(cs, line, subStart)
			} else if !cs.subscribed && string(f.ID) == subscribeID {
				if cs.auth == authPending {
					cs.auth = authHeld // subscribed once authed comes too
				} else {
					g.markSubscribed(cs, subStart)
				}
			}
		case frame.Error:
			if cs.awaitingAuthed() && string(f.ID) == authID {
				cs.auth = authRefused
				if len(f.Code) == 0 {
					return "no_code"
				}
				return string(f.Code)
			}
			resuming := cs.fo != nil && cs.fo.stage == stageResuming
			if (!cs.subscribed || resuming) && string(f.ID) == subscribeID {
				return string(f.Code)
			}
		default:
			if cs.awaitingAuthed() && bytes.Equal(lineOp(line), opAuthed) {
				held := cs.auth == authHeld
				cs.auth = authDone
				if held {
					g.markSubscribed(cs, subStart)
				}
			}
			if cs.fo != nil {
				g.foControl(cs, line, now)
			}
			if cs.th != nil && bytes.Equal(lineOp(line), opConflated) {
				g.conflatedLine(cs, line)
			}
		}
	}
	return ""
}

func (g *group) handleGeneric(sh *shard, cs *connState, b []byte, now int64) string {
	sh.mu.Lock()
	defer sh.mu.Unlock()
	err := g.extractor.Extract(b, func(f *frame.Fields) {
		if f.Kind == frame.Message {
			g.account(sh, cs, f, now)
		}
	})
	if err != nil {
		sh.unparsed++
	}
	return ""
}

// account records one message; the caller holds sh.mu.
func (g *group) account(sh *shard, cs *connState, f *frame.Fields, now int64) {
	if cs.th != nil {
		g.accountThrottled(sh, cs, f, now)
		return
	}
	sh.received++
	st := sh.step(f.Step)
	st.Received++
	if f.SentNs > 0 {
		us := (now - f.SentNs) / 1e3
		st.Latency.RecordMicros(us)
		sh.interval.RecordMicros(us)
		if cs.fo != nil && cs.fo.standby {
			g.standbyLatency(now, us)
		}
	}
	if f.Seq == 0 {
		return
	}
	t := cs.tracker(g.names, f.Channel)
	if t != nil {
		t.Observe(f.Seq, f.Partition, f.Offset, f.Step)
	}
}

// tracker finds the subscription a message belongs to: by channel name, or the only one
// when the message carries no channel.
func (cs *connState) tracker(names []string, channel []byte) *sequence.Tracker {
	if len(channel) == 0 {
		if len(cs.trackers) == 1 {
			return &cs.trackers[0]
		}
		return nil
	}
	for i, ch := range cs.channels {
		if names[ch] == string(channel) {
			return &cs.trackers[i]
		}
	}
	return nil
}

func (g *group) progress(ready bool) Progress {
	p := Progress{
		Connected:  g.connected.Load(),
		Subscribed: g.subscribed.Load(),
		Failed:     g.failed.Load(),
		Dropped:    g.dropped.Load(),
		Interval:   latency.New(),
		Ready:      ready,
		Awaiting:   g.awaiting.Load(),
		Left:       g.left.Load(),
		Resumed:    g.resumed.Load(),
	}
	for i := range g.shards {
		sh := &g.shards[i]
		sh.mu.Lock()
		p.Received += sh.received
		p.Interval.Merge(sh.interval)
		sh.interval.Reset()
		sh.mu.Unlock()
	}
	return p
}

// result collects the figures once every connection goroutine has ended.
func (g *group) result() *GroupResult {
	r := &GroupResult{
		Connected:        g.connected.Load(),
		Subscribed:       g.subscribed.Load(),
		Failures:         g.failures,
		Dropped:          g.drops,
		Handshake:        g.handshake,
		Subscribe:        g.subscribe,
		FirstDialNs:      g.firstDial,
		LastSubscribedNs: g.lastSub,
		Channels:         map[string]*sequence.Counts{},
	}
	if g.fo != nil {
		r.Failover = g.failoverResult()
	}
	if g.throttled > 0 {
		r.Throttled = g.throttledResult()
	}
	for i := range g.shards {
		sh := &g.shards[i]
		r.Received += sh.received
		r.Unparsed += sh.unparsed
		for s := range sh.steps {
			for len(r.Steps) <= s {
				r.Steps = append(r.Steps, StepResult{Latency: latency.New()})
			}
			r.Steps[s].Received += sh.steps[s].Received
			r.Steps[s].Latency.Merge(sh.steps[s].Latency)
		}
	}
	for k := range g.conns {
		cs := &g.conns[k]
		if cs.slow {
			r.Slow++
		}
		if !cs.subscribed || cs.dropped || cs.slow || cs.th != nil {
			continue
		}
		for i, ch := range cs.channels {
			name := g.names[ch]
			c := r.Channels[name]
			if c == nil {
				c = &sequence.Counts{}
				r.Channels[name] = c
			}
			c.Add(&cs.trackers[i])
		}
	}
	return r
}

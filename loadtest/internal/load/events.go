package load

import (
	"github.com/adred-codev/ws_poc/loadtest/internal/latency"
	"github.com/adred-codev/ws_poc/loadtest/internal/rusage"
	"github.com/adred-codev/ws_poc/loadtest/internal/sequence"
)

// Plan is what one group (in-process or worker process) runs: the scenario and its slice
// [From, To) of connection indexes.
type Plan struct {
	Scenario Scenario `json:"scenario"`
	From     int      `json:"from"`
	To       int      `json:"to"`
	// RampRate is this group's share of the scenario's ramp rate.
	RampRate float64 `json:"ramp_rate"`
}

// Progress is one group's figures over the last interval (about a second).
type Progress struct {
	Connected  int64              `json:"connected"`
	Subscribed int64              `json:"subscribed"`
	Failed     int64              `json:"failed"`
	Dropped    int64              `json:"dropped"`
	Received   int64              `json:"received"` // total so far
	Interval   *latency.Histogram `json:"interval"` // latencies since the last Progress
	Ready      bool               `json:"ready"`    // every connection subscribed or failed
	// Awaiting, Left and Resumed count a failover's A clients: subscribed on A with their
	// resume not ended, whose A connection ended, whose resume ended.
	Awaiting int64 `json:"awaiting,omitempty"`
	Left     int64 `json:"left,omitempty"`
	Resumed  int64 `json:"resumed,omitempty"`
	// CPU is the worker process's CPU time so far (zero for in-process groups, whose CPU
	// is the parent's).
	CPU rusage.CPU `json:"cpu"`
}

// StepResult is what a group received of one producer step.
type StepResult struct {
	Latency  *latency.Histogram `json:"latency"`
	Received int64              `json:"received"`
}

// GroupResult is one group's final figures.
type GroupResult struct {
	Connected  int64 `json:"connected"`
	Subscribed int64 `json:"subscribed"`
	Slow       int64 `json:"slow"`
	// Failures counts handshake and subscribe failures by cause.
	Failures map[string]int64 `json:"failures"`
	// Dropped counts connections the server (or network) ended during the run, by cause.
	Dropped map[string]int64 `json:"dropped"`
	// Handshake and Subscribe are latencies of the upgrade and of subscribe -> subscribed.
	Handshake *latency.Histogram `json:"handshake"`
	Subscribe *latency.Histogram `json:"subscribe"`
	// FirstDialNs and LastSubscribedNs are Unix nanoseconds, to time the whole connect phase.
	FirstDialNs      int64 `json:"first_dial_ns"`
	LastSubscribedNs int64 `json:"last_subscribed_ns"`
	// Received counts every message line received; Steps splits them by producer step
	// (messages without a step count under step 0).
	Received int64        `json:"received"`
	Steps    []StepResult `json:"steps"`
	// Channels are the loss accounting figures per channel, over connections that stayed
	// open and subscribed to the end (dropped and slow connections are counted apart).
	Channels map[string]*sequence.Counts `json:"channels"`
	// Unparsed counts frames another server sent that the extractor could not decode.
	Unparsed int64 `json:"unparsed"`
	// CPU is the group's process CPU time (workers only; in-process groups leave it zero).
	CPU rusage.CPU `json:"cpu"`
	// Failover is the failover accounting (failover runs only).
	Failover *GroupFailover `json:"failover,omitempty"`
	// Throttled is the throttled clients' accounting (runs with ThrottleFraction only);
	// their messages are not in Received, Steps or Channels.
	Throttled *GroupThrottled `json:"throttled,omitempty"`
}

// wireMsg is one JSON line a worker writes on stdout.
type wireMsg struct {
	Progress *Progress    `json:"progress,omitempty"`
	Result   *GroupResult `json:"result,omitempty"`
	Error    string       `json:"error,omitempty"`
}

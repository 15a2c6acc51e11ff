// This file is duplicated in ws-single (internal/metrics/metrics.go) on purpose; they may diverge.

// Package metrics defines every Prometheus metric of the server on a registry
// passed in; names and labels are the README metrics table, a contract.
package metrics

import (
	"runtime"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// BuildInfo labels ws_build_info.
type BuildInfo struct {
	Variant string // "ws-multi"
	Version string // from the variant's git tag, e.g. "v1.2.3"
	Commit  string // short git commit
}

// Labels are the documented label values New pre-initialises to 0, so dashboards see every
// series from the start. Their owners hold the lists: server.RejectReasons,
// server.ReasonLabels(), protocol.ErrorCodes. (Skip reasons are pre-initialised per topic
// by the Kafka consumer, which owns them and knows the topics.)
type Labels struct {
	Rejects     []string // ws_connections_rejected_total{reason}: server.RejectReasons
	Disconnects []string // ws_disconnects_total{reason}: server.ReasonLabels()
	Errors      []string // ws_protocol_errors_total{code}: protocol.ErrorCodes
	// NotRecovered are ws_resume_requests_total's reasons: protocol.NotRecoveredReasons.
	NotRecovered []string
	// AuthFailures are ws_auth_failures_total's reasons: auth.Reasons.
	AuthFailures []string
}

// Values of ws_auth_total's labels; ResultOK and ResultFailed are ws_tls_reloads_total's too.
const (
	AuthSourceMessage = "message" // an auth request
	AuthSourceHeader  = "header"  // a bearer token in Sec-WebSocket-Protocol
	ResultOK          = "ok"
	ResultFailed      = "failed"
)

// Values of ws_resume_requests_total's labels besides the not-recovered reasons.
const (
	ResultRecovered    = "recovered"
	ResultNotRecovered = "not_recovered"
	ReasonNone         = "none" // the reason of a recovered resume
	SourceNone         = "none" // the source of a resume decided before any replay
)

// Values of ws_conflated_records_total's mode label (docs/PROTOCOL.md, Conflation).
const (
	ConflateBehind   = "behind"   // replaced in a client's queue while it is behind
	ConflateInterval = "interval" // replaced within an interval, once for all its subscribers
)

// countBuckets are the buckets of record counts (replayed, scanned): 1 to 1M.
var countBuckets = prometheus.ExponentialBuckets(1, 10, 7)

// latencyBuckets are the ws_delivery_latency_seconds buckets: 0.5 ms (a record
// fanned out on the same host) to 5 s (a stalled consumer or a slow client).
var latencyBuckets = []float64{0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5}

// Metrics holds every metric of the README table. Fields are safe for
// concurrent use, as all client_golang metrics are.
type Metrics struct {
	Connections         prometheus.Gauge         // ws_connections
	ConnectionsAccepted prometheus.Counter       // ws_connections_accepted_total
	ConnectionsRejected *prometheus.CounterVec   // ws_connections_rejected_total{reason}
	AcceptErrors        prometheus.Counter       // ws_accept_errors_total
	Disconnects         *prometheus.CounterVec   // ws_disconnects_total{reason}
	Subscriptions       prometheus.Gauge         // ws_subscriptions
	Channels            prometheus.Gauge         // ws_channels
	ProtocolErrors      *prometheus.CounterVec   // ws_protocol_errors_total{code}
	MessagesDelivered   prometheus.Counter       // ws_messages_delivered_total
	FramesWritten       prometheus.Counter       // ws_frames_written_total
	BytesWritten        prometheus.Counter       // ws_bytes_written_total
	SendQueueOverflow   prometheus.Counter       // ws_send_queue_overflow_total
	KafkaRecords        *prometheus.CounterVec   // ws_kafka_records_consumed_total{topic}
	KafkaSkipped        *prometheus.CounterVec   // ws_kafka_records_skipped_total{topic,reason}
	KafkaLag            *prometheus.GaugeVec     // ws_kafka_consumer_lag{topic,partition}
	KafkaAttached       prometheus.Gauge         // ws_kafka_attached
	KafkaErrors         prometheus.Counter       // ws_kafka_errors_total
	DeliveryLatency     prometheus.Histogram     // ws_delivery_latency_seconds
	CgroupCPULimitCores prometheus.Gauge         // ws_cgroup_cpu_limit_cores
	CgroupCPUUsageRatio prometheus.Gauge         // ws_cgroup_cpu_usage_ratio
	CgroupMemoryLimit   prometheus.Gauge         // ws_cgroup_memory_limit_bytes
	CgroupMemoryUsage   prometheus.Gauge         // ws_cgroup_memory_usage_bytes
	ShardQueueDepth     *prometheus.GaugeVec     // ws_shard_queue_depth{shard}
	ShardFanout         *prometheus.HistogramVec // ws_shard_fanout_seconds{shard}

	ResumeRequests   *prometheus.CounterVec // ws_resume_requests_total{result,reason,source}
	ResumeReplayed   prometheus.Histogram   // ws_resume_replayed_records
	ResumeScanned    prometheus.Histogram   // ws_resume_scanned_records
	ResumeDuration   prometheus.Histogram   // ws_resume_duration_seconds
	ResumeReaders    prometheus.Gauge       // ws_resume_catchup_readers
	HistoryRecords   *prometheus.GaugeVec   // ws_history_records{topic,partition}
	HistoryBytes     *prometheus.GaugeVec   // ws_history_bytes{topic,partition}
	HistoryOldestAge *prometheus.GaugeVec   // ws_history_oldest_age_seconds{topic,partition}
	LiveGaps         *prometheus.CounterVec // ws_live_gaps_total{topic,reason}
	MarksSent        prometheus.Counter     // ws_marks_sent_total
	Auth             *prometheus.CounterVec // ws_auth_total{source,result}
	AuthFailures     *prometheus.CounterVec // ws_auth_failures_total{reason}
	TLSReloads       *prometheus.CounterVec // ws_tls_reloads_total{result}
	TLSCertExpiry    prometheus.Gauge       // ws_tls_certificate_expiry_timestamp_seconds

	ConflatedRecords      *prometheus.CounterVec // ws_conflated_records_total{mode}
	ConflationClients     prometheus.Gauge       // ws_conflation_clients
	ConflationPendingKeys prometheus.Gauge       // ws_conflation_pending_keys
}

// fanoutBuckets are the ws_shard_fanout_seconds buckets: 10 µs (a record with a
// few subscribers, written) to 1 s (a shard that has fallen far behind).
var fanoutBuckets = []float64{0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.1, 1}

// New creates every metric, registers them with ws_build_info and the process
// and Go collectors on reg, and pre-initialises the label values of labels.
// It panics if a name is already registered on reg, as MustRegister does: that
// is a programming error, and each registry gets one Metrics.
func New(reg prometheus.Registerer, info BuildInfo, labels Labels) *Metrics {
	counter := func(name, help string) prometheus.Counter {
		return prometheus.NewCounter(prometheus.CounterOpts{Name: name, Help: help})
	}
	gauge := func(name, help string) prometheus.Gauge {
		return prometheus.NewGauge(prometheus.GaugeOpts{Name: name, Help: help})
	}
	m := &Metrics{
		Connections:         gauge("ws_connections", "Open WebSocket connections."),
		ConnectionsAccepted: counter("ws_connections_accepted_total", "WebSocket upgrades accepted."),
		ConnectionsRejected: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ws_connections_rejected_total", Help: "WebSocket upgrades refused, by reason.",
		}, []string{"reason"}),
		AcceptErrors: counter("ws_accept_errors_total", "Failed accepts on the listener (e.g. out of file descriptors); the server retries."),
		Disconnects: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ws_disconnects_total", Help: "WebSocket connections ended, by reason.",
		}, []string{"reason"}),
		Subscriptions: gauge("ws_subscriptions", "Client subscriptions (client x channel)."),
		Channels:      gauge("ws_channels", "Channels with at least one subscriber."),
		ProtocolErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ws_protocol_errors_total", Help: "Protocol error replies sent, by code.",
		}, []string{"code"}),
		MessagesDelivered: counter("ws_messages_delivered_total", "Messages written to sockets."),
		FramesWritten:     counter("ws_frames_written_total", "WebSocket frames written."),
		BytesWritten:      counter("ws_bytes_written_total", "Payload bytes written."),
		SendQueueOverflow: counter("ws_send_queue_overflow_total", "Clients whose send queue overflowed."),
		KafkaRecords: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ws_kafka_records_consumed_total", Help: "Kafka records consumed, by topic.",
		}, []string{"topic"}),
		KafkaSkipped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ws_kafka_records_skipped_total", Help: "Kafka records not delivered, by topic and reason.",
		}, []string{"topic", "reason"}),
		KafkaLag: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "ws_kafka_consumer_lag", Help: "High-water mark minus next offset, per partition.",
		}, []string{"topic", "partition"}),
		KafkaAttached: gauge("ws_kafka_attached", "1 while every partition is being consumed."),
		KafkaErrors:   counter("ws_kafka_errors_total", "Kafka consumer errors."),
		DeliveryLatency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "ws_delivery_latency_seconds",
			Help:    "Kafka record timestamp to socket write.",
			Buckets: latencyBuckets,
		}),
		CgroupCPULimitCores: gauge("ws_cgroup_cpu_limit_cores", "CPU limit in cores (cgroup quota, else cores on the host)."),
		CgroupCPUUsageRatio: gauge("ws_cgroup_cpu_usage_ratio", "CPU used / CPU limit over the last second."),
		CgroupMemoryLimit:   gauge("ws_cgroup_memory_limit_bytes", "Cgroup memory limit in bytes (0 when unlimited)."),
		CgroupMemoryUsage:   gauge("ws_cgroup_memory_usage_bytes", "Cgroup memory usage in bytes: the working set, usage minus inactive file cache."),
		ShardQueueDepth: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "ws_shard_queue_depth", Help: "Events waiting per hub shard.",
		}, []string{"shard"}),
		ShardFanout: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "ws_shard_fanout_seconds",
			Help:    "Time a hub shard takes per round: fanning out the records waiting and writing to every client that got one.",
			Buckets: fanoutBuckets,
		}, []string{"shard"}),
		ResumeRequests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ws_resume_requests_total", Help: "Resumes (subscribes with resume), by result, reason and source (memory or kafka).",
		}, []string{"result", "reason", "source"}),
		ResumeReplayed: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "ws_resume_replayed_records", Help: "Records replayed per resume.", Buckets: countBuckets,
		}),
		ResumeScanned: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "ws_resume_scanned_records", Help: "Records scanned per resume (memory and Kafka).", Buckets: countBuckets,
		}),
		ResumeDuration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "ws_resume_duration_seconds", Help: "From a resume's request to its recovered line.", Buckets: latencyBuckets,
		}),
		ResumeReaders: gauge("ws_resume_catchup_readers", "Kafka catch-up readers in use."),
		HistoryRecords: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "ws_history_records", Help: "Records held in the in-memory history, per partition.",
		}, []string{"topic", "partition"}),
		HistoryBytes: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "ws_history_bytes", Help: "Wire bytes held in the in-memory history, per partition.",
		}, []string{"topic", "partition"}),
		HistoryOldestAge: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "ws_history_oldest_age_seconds", Help: "Age of the oldest record in the in-memory history, per partition.",
		}, []string{"topic", "partition"}),
		LiveGaps: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ws_live_gaps_total", Help: "Gaps in the live stream announced to subscribers, by topic and reason.",
		}, []string{"topic", "reason"}),
		MarksSent: counter("ws_marks_sent_total", "Topic marks encoded (each sent to all the topic's positioned subscribers)."),
		Auth: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ws_auth_total", Help: "Tokens verified, by source (message or header) and result (ok or failed).",
		}, []string{"source", "result"}),
		AuthFailures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ws_auth_failures_total", Help: "Tokens refused, by reason.",
		}, []string{"reason"}),
		TLSReloads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ws_tls_reloads_total", Help: "Reloads of the TLS certificate after its files changed, by result (ok or failed).",
		}, []string{"result"}),
		TLSCertExpiry: gauge("ws_tls_certificate_expiry_timestamp_seconds", "Expiry (notAfter, unix seconds) of the TLS certificate in use; 0 without TLS."),
		ConflatedRecords: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ws_conflated_records_total", Help: "Records replaced by a newer one of their key before delivery, by conflation mode (behind or interval).",
		}, []string{"mode"}),
		ConflationClients:     gauge("ws_conflation_clients", "Clients conflating now: behind, with replaced records waiting in their queue."),
		ConflationPendingKeys: gauge("ws_conflation_pending_keys", "Keys (channel and partition) conflation tracks: in behind clients' queues until they are out, and held in interval buckets."),
	}
	buildInfo := prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "ws_build_info",
		Help: "Build of the running server; always 1.",
		ConstLabels: prometheus.Labels{
			"variant": info.Variant, "version": info.Version, "commit": info.Commit, "go_version": runtime.Version(),
		},
	})
	buildInfo.Set(1)

	reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		buildInfo,
		m.Connections, m.ConnectionsAccepted, m.ConnectionsRejected, m.AcceptErrors, m.Disconnects,
		m.Subscriptions, m.Channels, m.ProtocolErrors,
		m.MessagesDelivered, m.FramesWritten, m.BytesWritten, m.SendQueueOverflow,
		m.KafkaRecords, m.KafkaSkipped, m.KafkaLag, m.KafkaAttached, m.KafkaErrors, m.DeliveryLatency,
		m.CgroupCPULimitCores, m.CgroupCPUUsageRatio, m.CgroupMemoryLimit, m.CgroupMemoryUsage,
		m.ShardQueueDepth, m.ShardFanout,
		m.ResumeRequests, m.ResumeReplayed, m.ResumeScanned, m.ResumeDuration, m.ResumeReaders,
		m.HistoryRecords, m.HistoryBytes, m.HistoryOldestAge, m.LiveGaps, m.MarksSent,
		m.Auth, m.AuthFailures, m.TLSReloads, m.TLSCertExpiry,
		m.ConflatedRecords, m.ConflationClients, m.ConflationPendingKeys,
	)
	for _, mode := range []string{ConflateBehind, ConflateInterval} {
		m.ConflatedRecords.WithLabelValues(mode)
	}
	for _, src := range []string{AuthSourceMessage, AuthSourceHeader} {
		for _, res := range []string{ResultOK, ResultFailed} {
			m.Auth.WithLabelValues(src, res)
		}
	}
	for _, r := range labels.AuthFailures {
		m.AuthFailures.WithLabelValues(r)
	}
	for _, r := range []string{ResultOK, ResultFailed} {
		m.TLSReloads.WithLabelValues(r)
	}
	for _, src := range []string{"memory", "kafka"} {
		m.ResumeRequests.WithLabelValues(ResultRecovered, ReasonNone, src)
	}
	for _, r := range labels.NotRecovered {
		m.ResumeRequests.WithLabelValues(ResultNotRecovered, r, SourceNone)
	}
	for _, r := range labels.Rejects {
		m.ConnectionsRejected.WithLabelValues(r)
	}
	for _, r := range labels.Disconnects {
		m.Disconnects.WithLabelValues(r)
	}
	for _, c := range labels.Errors {
		m.ProtocolErrors.WithLabelValues(c)
	}
	return m
}

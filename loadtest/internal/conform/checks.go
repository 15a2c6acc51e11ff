package conform

// checks lists every check in the order they run. The capacity and per-address checks
// run before any other connection of the suite exists; the frame check runs last, over
// everything the server sent during the run.
func (s *suite) checks() []check {
	cs := []check{
		{name: "http: /readyz answers 200", run: checkReady},
		{name: "http: plain GET /ws answers 426 with Connection: close", run: checkPlainHTTP},
		{name: "http: plain POST /ws answers 426 with Connection: close", run: checkPlainPost},
		{name: "http: request headers over WS_MAX_HEADER_BYTES answer 431", run: checkHeaderLimit},
	}
	if s.cfg.HTTPIdleTimeout > 0 {
		cs = append(cs, check{name: "http: an idle keep-alive connection is closed after WS_HTTP_IDLE_TIMEOUT", run: checkHTTPIdle, budget: idleBudget})
	}
	if s.cfg.HTTPMaxConnsPerIP > 0 {
		cs = append(cs, check{name: "http: a connection past WS_HTTP_MAX_CONNS_PER_IP is closed at accept", run: checkIPLimit})
	}
	if s.cfg.MaxConnections > 0 {
		cs = append(cs, check{name: "close: 1013 over_capacity past WS_MAX_CONNECTIONS, the socket released at once", run: checkCapacity})
	}
	cs = append(cs,
		check{name: "origin: no Origin header is accepted", run: checkNoOrigin},
		check{name: "origin: same-origin upgrade is accepted", run: checkSameOrigin},
		check{name: "origin: cross-origin upgrade is refused with 403 and Connection: close", run: checkCrossOrigin},
		check{name: "delivery: a produced record reaches a subscriber", run: checkDelivery},
		check{name: "reply: ping/pong, id echoed, absent id stays absent", run: checkPing},
		check{name: "reply: subscribe/unsubscribe de-duplicate in request order, repeats are not errors", run: checkSubscribeReplies},
		check{name: "reply: replies keep the order of the requests", run: checkReplyOrder},
		check{name: "reply: exact bytes, field order, < > & and U+2028 echoed raw", run: checkReplyBytes},
		check{name: "reply: no message of a channel after its unsubscribed reply", run: checkUnsubscribeStops},
		check{name: "error: invalid_json", run: checkInvalidJSON},
		check{name: "error: invalid_request", run: checkInvalidRequest},
		check{name: "error: unknown_op", run: checkUnknownOp},
		check{name: "error: invalid_channel (and valid edge cases accepted)", run: checkInvalidChannel},
		check{name: "error: an echoed channel is cut to 64 bytes, the reply stays under 512", run: checkEchoCap},
		check{name: "error: too_many_subscriptions, subscribe is all-or-nothing", run: checkTooManySubscriptions},
		check{name: "channel: <topic>:<key>, every message field", run: checkKeyChannel},
		check{name: "channel: empty key maps to <topic>", run: checkEmptyKey},
		check{name: "channel: a channel header overrides the key", run: checkHeaderOverride},
		check{name: "channel: a header of another topic, an invalid one or two reach nobody", run: checkHeaderRule},
		check{name: "channel: <topic>:* receives the whole topic", run: checkWildcard},
		check{name: "channel: once-only delivery with a channel and its wildcard", run: checkOnceOnly},
		check{name: "message: data is compacted JSON, else a string, null when empty", run: checkData},
		check{name: "message: per-partition offset order under a burst", run: checkOffsetOrder},
		check{name: "message: a record over WS_MAX_RECORD_BYTES is announced as skipped", run: checkTooLarge},
		check{name: "batching: frames under a burst", run: checkBatching},
		check{name: "batching: a message above WS_BATCH_MAX_BYTES arrives whole, alone in its frame", run: checkBigMessage},
		check{name: "slow: clients reading at full speed drain a burst of large records", run: checkDrainingBurst, budget: burstBudget},
		check{name: "close: 1002 for a frame that breaks RFC 6455 framing", run: checkFramingErrors},
		check{name: "close: 1003 binary", run: checkBinaryClose},
		check{name: "close: 1007 invalid_utf8", run: checkInvalidUTF8},
		check{name: "close: 1009 frame above WS_READ_LIMIT", run: checkReadLimitClose},
		check{name: "close: 1009 reaches a client that writes a 4 MiB frame before it reads", run: checkReadLimitLinger, budget: lingerBudget},
		check{name: "close: a frame header declaring 2^40 bytes ends within WS_WRITE_TIMEOUT", run: checkHugeLength, budget: hugeBudget},
		check{name: "close: 1008 rate_limit after a pong for every request accepted", run: checkRateLimitClose},
		check{name: "close: 1008 rate_limit on a flood of WebSocket pings (pongs do not count)", run: checkPingFlood, budget: floodBudget},
	)
	if s.cfg.SendQueueMessages > 0 {
		cs = append(cs, check{name: "close: 1008 slow when a client stops reading", run: checkSlowClose, budget: slowBudget})
	}
	if s.cfg.PingInterval > 0 {
		cs = append(cs, check{name: "ping: a client that answers pings stays, a silent one is dropped", run: checkPingTimeout, budget: pingBudget})
	}
	if s.cfg.Conflate {
		cs = append(cs, conflateChecks(s.cfg)...)
	}
	if s.cfg.Resume {
		cs = append(cs, resumeChecks(s.cfg)...)
	}
	if s.cfg.Auth.on() {
		cs = append(cs, authChecks(s.cfg)...)
	}
	return append(cs,
		check{name: "frames: every frame splits on \\n into JSON objects, within WS_BATCH_MAX_BYTES", run: checkFrames},
	)
}

package conform

// checks lists every check in the order they run. The capacity check runs before any
// other connection of the suite exists; the frame check runs last, over everything the
// server sent during the run.
func (s *suite) checks() []check {
	cs := []check{
		{name: "http: /readyz answers 200", run: checkReady},
		{name: "http: plain GET /ws answers 426", run: checkPlainHTTP},
	}
	if s.cfg.MaxConnections > 0 {
		cs = append(cs, check{name: "close: 1013 over_capacity past WS_MAX_CONNECTIONS", run: checkCapacity})
	}
	cs = append(cs,
		check{name: "origin: no Origin header is accepted", run: checkNoOrigin},
		check{name: "origin: same-origin upgrade is accepted", run: checkSameOrigin},
		check{name: "origin: cross-origin upgrade is refused with 403", run: checkCrossOrigin},
		check{name: "delivery: a produced record reaches a subscriber", run: checkDelivery},
		check{name: "reply: ping/pong, id echoed, absent id stays absent", run: checkPing},
		check{name: "reply: subscribe/unsubscribe de-duplicate in request order, repeats are not errors", run: checkSubscribeReplies},
		check{name: "reply: replies keep the order of the requests", run: checkReplyOrder},
		check{name: "reply: no message of a channel after its unsubscribed reply", run: checkUnsubscribeStops},
		check{name: "error: invalid_json", run: checkInvalidJSON},
		check{name: "error: invalid_request", run: checkInvalidRequest},
		check{name: "error: unknown_op", run: checkUnknownOp},
		check{name: "error: invalid_channel (and valid edge cases accepted)", run: checkInvalidChannel},
		check{name: "error: too_many_subscriptions, subscribe is all-or-nothing", run: checkTooManySubscriptions},
		check{name: "channel: <topic>:<key>, every message field", run: checkKeyChannel},
		check{name: "channel: empty key maps to <topic>", run: checkEmptyKey},
		check{name: "channel: a channel header overrides the key", run: checkHeaderOverride},
		check{name: "channel: <topic>:* receives the whole topic", run: checkWildcard},
		check{name: "channel: once-only delivery with a channel and its wildcard", run: checkOnceOnly},
		check{name: "message: data is compacted JSON, else a string, null when empty", run: checkData},
		check{name: "message: per-partition offset order under a burst", run: checkOffsetOrder},
		check{name: "batching: frames under a burst", run: checkBatching},
		check{name: "batching: a message above WS_BATCH_MAX_BYTES arrives whole, alone in its frame", run: checkBigMessage},
		check{name: "close: 1003 binary", run: checkBinaryClose},
		check{name: "close: 1009 frame above WS_READ_LIMIT", run: checkReadLimitClose},
		check{name: "close: 1008 rate_limit", run: checkRateLimitClose},
	)
	if s.cfg.SendQueueMessages > 0 {
		cs = append(cs, check{name: "close: 1008 slow when a client stops reading", run: checkSlowClose})
	}
	if s.cfg.PingInterval > 0 {
		cs = append(cs, check{name: "ping: a client that answers pings stays, a silent one is dropped", run: checkPingTimeout, budget: pingBudget})
	}
	return append(cs,
		check{name: "frames: every frame splits on \\n into JSON objects, within WS_BATCH_MAX_BYTES", run: checkFrames},
	)
}

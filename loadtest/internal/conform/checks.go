package conform

// checks lists every check in the order they run. The capacity check runs before any
// other connection of the suite exists; the frame check runs last, over everything the
// server sent during the run.
func (s *suite) checks() []check {
	cs := []check{
		{"http: /readyz answers 200", checkReady},
		{"http: plain GET /ws answers 426", checkPlainHTTP},
	}
	if s.cfg.MaxConnections > 0 {
		cs = append(cs, check{"close: 1013 over_capacity past WS_MAX_CONNECTIONS", checkCapacity})
	}
	return append(cs,
		check{"origin: no Origin header is accepted", checkNoOrigin},
		check{"origin: same-origin upgrade is accepted", checkSameOrigin},
		check{"origin: cross-origin upgrade is refused with 403", checkCrossOrigin},
		check{"delivery: a produced record reaches a subscriber", checkDelivery},
		check{"reply: ping/pong, id echoed, absent id stays absent", checkPing},
		check{"reply: subscribe/unsubscribe de-duplicate in request order, repeats are not errors", checkSubscribeReplies},
		check{"reply: replies keep the order of the requests", checkReplyOrder},
		check{"reply: no message of a channel after its unsubscribed reply", checkUnsubscribeStops},
		check{"error: invalid_json", checkInvalidJSON},
		check{"error: invalid_request", checkInvalidRequest},
		check{"error: unknown_op", checkUnknownOp},
		check{"error: invalid_channel (and valid edge cases accepted)", checkInvalidChannel},
		check{"error: too_many_subscriptions, subscribe is all-or-nothing", checkTooManySubscriptions},
		check{"channel: <topic>:<key>, every message field", checkKeyChannel},
		check{"channel: empty key maps to <topic>", checkEmptyKey},
		check{"channel: a channel header overrides the key", checkHeaderOverride},
		check{"channel: <topic>:* receives the whole topic", checkWildcard},
		check{"channel: once-only delivery with a channel and its wildcard", checkOnceOnly},
		check{"message: data is compacted JSON, else a string, null when empty", checkData},
		check{"message: per-partition offset order under a burst", checkOffsetOrder},
		check{"batching: frames under a burst", checkBatching},
		check{"batching: a message above WS_BATCH_MAX_BYTES arrives whole, alone in its frame", checkBigMessage},
		check{"close: 1003 binary", checkBinaryClose},
		check{"close: 1009 frame above WS_READ_LIMIT", checkReadLimitClose},
		check{"close: 1008 rate_limit", checkRateLimitClose},
		check{"frames: every frame splits on \\n into JSON objects, within WS_BATCH_MAX_BYTES", checkFrames},
	)
}

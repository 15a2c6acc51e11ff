#!/bin/sh
# Synthetic market data into the compose Kafka: trades and tickers for a few symbols, keyed by
# symbol (channels trades:BTC-USD, tickers:ETH-USD, ...), FEED_RATE records per second in all,
# in batches every 100ms. Runs in the apache/kafka image and produces with its console
# producer, so record timestamps are the producer's clock (what ws_delivery_latency_seconds
# measures from).
#
# `loadtest dev` only feeds the broker it starts itself; once it can feed an external broker,
# the compose feed service can run that instead (see deploy/README.md).
#
#   FEED_RATE      records per second over both topics (default 200)
#   FEED_SYMBOLS   comma-separated record keys (default BTC-USD,ETH-USD,SOL-USD,XRP-USD,DOGE-USD)
#   FEED_TICKS     stop after this many 100ms batches; 0 = never (default 0)
#   FEED_PRODUCER  command that reads "key|value" lines for the topic appended as its last word
set -eu
rate=${FEED_RATE:-200}
symbols=${FEED_SYMBOLS:-BTC-USD,ETH-USD,SOL-USD,XRP-USD,DOGE-USD}
ticks=${FEED_TICKS:-0}
producer=${FEED_PRODUCER:-/opt/kafka/bin/kafka-console-producer.sh --bootstrap-server kafka:9092 --property parse.key=true --property 'key.separator=|' --topic}

exec awk -v rate="$rate" -v syms="$symbols" -v ticks="$ticks" -v producer="$producer" '
BEGIN {
	srand()
	n = split(syms, sym, ",")
	if (n == 0 || rate <= 0) { print "feed: FEED_SYMBOLS empty or FEED_RATE not positive" > "/dev/stderr"; exit 2 }
	for (i = 1; i <= n; i++) price[i] = 100 * (n - i + 1) * (1 + rand())
	per_tick = int(rate / 10 + 0.5)
	if (per_tick < 1) per_tick = 1
	trades = producer " trades"
	tickers = producer " tickers"
	for (t = 0; ticks == 0 || t < ticks; t++) {
		for (k = 0; k < per_tick; k++) {
			i = int(rand() * n) + 1
			price[i] *= 1 + (rand() - 0.5) / 500
			if (k % 3 != 2) {
				side = rand() < 0.5 ? "buy" : "sell"
				printf "%s|{\"symbol\":\"%s\",\"price\":\"%.2f\",\"size\":\"%.4f\",\"side\":\"%s\"}\n", sym[i], sym[i], price[i], rand() * 2, side | trades
			} else {
				printf "%s|{\"symbol\":\"%s\",\"bid\":\"%.2f\",\"ask\":\"%.2f\"}\n", sym[i], sym[i], price[i] * 0.9999, price[i] * 1.0001 | tickers
			}
		}
		fflush(trades)
		fflush(tickers)
		system("sleep 0.1")
	}
	close(trades)
	close(tickers)
}'

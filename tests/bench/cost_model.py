#!/usr/bin/env python3
"""The cost and scale model of README "Cost and scale model": `python3 tests/bench/cost_model.py`.

What sessionwarden itself adds to an app's bill and to its table's partitions, at 1M, 10M and 100M
live sessions, from the request counts the code makes per unit of work (measured by `just bench`,
`just bench stream-requests`, `just bench layouts` and `just bench index-load`, which count requests
and are deterministic) and the traffic assumptions below. Prices: AWS list prices, us-east-1,
on-demand, as of 2026-12-04 (DynamoDB's since its 2024-11-01 reduction). Everything is per 30-day month.
"""

# --- Prices (USD) ---------------------------------------------------------------------------------
WRU = 0.625 / 1e6          # DynamoDB on-demand write request unit
RRU = 0.125 / 1e6          # DynamoDB on-demand read request unit
LAMBDA_REQ = 0.20 / 1e6    # Lambda request
LAMBDA_GBS = 0.0000133334  # Lambda arm64 GB-second
SQS_REQ = 0.40 / 1e6       # SQS standard request (64 KB chunk)
LOG_GB = 0.50              # CloudWatch Logs ingestion per GB (EMF metrics travel as log lines)
METRIC_MONTH = 0.30        # one custom metric (first 10,000)

# --- Traffic assumptions (stated in README) -------------------------------------------------------
DAYS = 30
LIFETIME_DAYS = 4          # a session lives 4 days on average: logins per day = S / 4
PEAK_ACTIVE = 0.10         # share of live sessions active in the busiest hour
TOUCH_PER_MIN = 1          # an active session's app writes lastActivityAt at most once a minute
PEAK_HOURS_PER_DAY = 8     # daily activity = 8 hours at the peak rate
CHILD_SHARE = 0.05         # share of sessions that are a child (parentSessionId) of another
ENDED_BY_CLEANUP = 0.5     # of ended sessions: expired by cleanup; the rest end by logout or cascade
BUCKET_SECONDS = 900       # DUE_INDEX_BUCKET_SECONDS
SHARDS = 16                # DUE_INDEX_SHARDS
STREAM_BATCH = 500         # the template's BatchSize
STREAM_MB = 256            # the template's MemorySize (all three workers)

# --- Per unit of work, from the code and the benches ----------------------------------------------
# Stream, per login (INSERT): the identity claim is a TransactWriteItems put (2 WRU, transactional)
# plus its user and tenant burst counters (2 WRU each, shared by the logins of a batch and window:
# about 1 per login), then a consistent read of the counters (about 2 RRU). 35 requests per 1,000
# INSERTs (`just bench stream-requests`).
LOGIN_WRU, LOGIN_RRU, LOGIN_REQ = 2 + 2 * 1, 2, 35 / 1000
# Own-index layouts add, per login, the due entry and the user and tenant member entries (3 WRU, in
# BatchWriteItem), and per bucket move of an active session a delete and a put (2 WRU).
INDEX_LOGIN_WRU, INDEX_MOVE_WRU = 3, 2
# Per ended session: the stream reads its parent marker (1 RRU, consistent BatchGetItem of 100);
# cleanup reads it once (1 RRU consistent BatchGetItem) and ends it with one conditional write
# (1 WRU; on own-index layouts also deletes its due entry, 1 WRU); a cascade end is 1 WRU plus 1
# Query per 100 (`just bench`, `just bench layouts`: 1.000 items read per due session).
END_MARK_RRU, CLEANUP_RRU, CLEANUP_WRU, CASCADE_WRU = 1, 1, 1, 1
CLEANUP_QUERIES_PER_RUN = SHARDS * 5  # 4 finished buckets per hourly run + the last one again
STREAM_MS_PER_BATCH = 2 + 0.006 * STREAM_BATCH  # 6 µs per record (`just bench stream`) + overhead
EMF_BYTES_PER_INVOCATION = 1500


def model(live):
    logins_day = live / LIFETIME_DAYS
    ends_day = logins_day
    active_peak = live * PEAK_ACTIVE
    touches_day = active_peak * TOUCH_PER_MIN * 60 * PEAK_HOURS_PER_DAY
    moves_day = active_peak * (3600 / BUCKET_SECONDS) * PEAK_HOURS_PER_DAY
    records_day = touches_day + logins_day + ends_day
    m = DAYS
    stream_inv = records_day / STREAM_BATCH * m
    stream = {
        "requests": (logins_day * LOGIN_REQ + ends_day / 100 + ends_day * CHILD_SHARE) * m,
        "wru": logins_day * LOGIN_WRU * m,
        "rru": (logins_day * LOGIN_RRU + ends_day * END_MARK_RRU) * m,
        "lambda": stream_inv * (LAMBDA_REQ + STREAM_MS_PER_BATCH / 1000 * STREAM_MB / 1024 * LAMBDA_GBS),
        "sqs": ends_day * CHILD_SHARE * m * SQS_REQ,
        "logs": stream_inv * EMF_BYTES_PER_INVOCATION / 1e9 * LOG_GB,
    }
    due = ends_day * ENDED_BY_CLEANUP
    cleanup = {
        "requests": (CLEANUP_QUERIES_PER_RUN * 24 + due / 100 + due) * m,
        "wru": due * CLEANUP_WRU * m,
        "rru": (due * CLEANUP_RRU + CLEANUP_QUERIES_PER_RUN * 24 * 0.5) * m,
        "lambda": 24 * m * (LAMBDA_REQ + (0.2 + due / 24 * 0.002) * STREAM_MB / 1024 * LAMBDA_GBS),
        "sqs": 0.0,
        "logs": 24 * m * EMF_BYTES_PER_INVOCATION / 1e9 * LOG_GB,
    }
    cascaded = ends_day * 0.1
    cascade = {
        "requests": (cascaded + cascaded / 100 + cascaded / 10) * m,
        "wru": cascaded * CASCADE_WRU * m,
        "rru": (cascaded / 100 * 0.5 + cascaded / 10) * m,
        "lambda": cascaded / 10 * m * (LAMBDA_REQ + 0.05 * STREAM_MB / 1024 * LAMBDA_GBS),
        "sqs": cascaded / 10 * 3 * m * SQS_REQ,
        "logs": cascaded / 10 * m * EMF_BYTES_PER_INVOCATION / 1e9 * LOG_GB,
    }
    own_index = {
        "wru": (logins_day * INDEX_LOGIN_WRU + moves_day * INDEX_MOVE_WRU + due) * m,
    }
    # Partition load in the busiest second of the peak hour.
    peak_touch_s = active_peak * TOUCH_PER_MIN / 60
    peak_moves_s = active_peak / BUCKET_SECONDS
    peak = {
        "touches_s": peak_touch_s,
        "index_wru_s": peak_moves_s * INDEX_MOVE_WRU,
        "index_key_wru_s": peak_moves_s * INDEX_MOVE_WRU / SHARDS,
        "by_sweep_wcu_s": peak_touch_s * 2,  # a touch that moves sweepAt: delete + put in the GSI
        "shards_needed": max(1, int(-(-peak_moves_s * INDEX_MOVE_WRU // 500))),
    }
    return stream, cleanup, cascade, own_index, peak, touches_day * m, logins_day * m


def usd(workers):
    return sum(w["wru"] * WRU + w["rru"] * RRU + w["lambda"] + w["sqs"] + w["logs"] for w in workers)


def fmt(n):
    for unit, d in (("B", 1e9), ("M", 1e6), ("k", 1e3)):
        if n >= d:
            return f"{n / d:.1f}{unit}"
    return f"{n:.0f}"


def main():
    print("| live sessions | touches / month | logins / month | worker | AWS requests | WRU | RRU | $ / month |")
    print("|---:|---:|---:|---|---:|---:|---:|---:|")
    peaks = []
    for live in (1e6, 1e7, 1e8):
        stream, cleanup, cascade, own, peak, touches, logins = model(live)
        peaks.append((live, peak, own))
        for name, w in (("stream", stream), ("cleanup", cleanup), ("cascade", cascade)):
            print(f"| {fmt(live)} | {fmt(touches)} | {fmt(logins)} | {name} | {fmt(w['requests'])} | "
                  f"{fmt(w['wru'])} | {fmt(w['rru'])} | {usd([w]):,.2f} |")
        print(f"| {fmt(live)} | | | own due index (non-native layouts) | (in the stream's BatchWriteItem) | "
              f"{fmt(own['wru'])} | | {own['wru'] * WRU:,.2f} |")
        print(f"| {fmt(live)} | | | **all** | | | | **{usd([stream, cleanup, cascade]) + own['wru'] * WRU:,.2f}** |")
    print()
    print("| live sessions | peak touches/s | own due index: WRU/s | busiest index key: WRU/s (N = 16) | "
          "limit per partition | shards for 50 % headroom | native by-sweep GSI: WCU/s on its one ACTIVE key |")
    print("|---:|---:|---:|---:|---:|---:|---:|")
    for live, p, _ in peaks:
        print(f"| {fmt(live)} | {p['touches_s']:,.0f} | {p['index_wru_s']:,.0f} | {p['index_key_wru_s']:,.0f} | "
              f"1,000 WCU | {p['shards_needed']} | {p['by_sweep_wcu_s']:,.0f} |")


if __name__ == "__main__":
    main()

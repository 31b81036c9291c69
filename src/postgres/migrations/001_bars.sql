-- Bars, one row per (symbol, window): the latest revision until the final bar replaces it.
CREATE TABLE bars (
    symbol       text             NOT NULL,
    window_start timestamptz      NOT NULL,
    window_end   timestamptz      NOT NULL,
    open         double precision NOT NULL,
    high         double precision NOT NULL,
    low          double precision NOT NULL,
    close        double precision NOT NULL,
    volume       bigint           NOT NULL,
    trades       bigint           NOT NULL,
    vwap         double precision,
    avg_price    double precision NOT NULL,
    final        boolean          NOT NULL,
    stored_at    timestamptz      NOT NULL,
    PRIMARY KEY (symbol, window_start, window_end)
);

CREATE INDEX bars_by_time ON bars (window_start);

-- Where `store` is in each partition of each topic it reads, per consumer group: written in
-- the same transaction as the bars read up to there. NULL: from the partition's start.
CREATE TABLE store_offsets (
    consumer_group text        NOT NULL,
    topic          text        NOT NULL,
    partition      integer     NOT NULL,
    next_offset    bigint,
    updated_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (consumer_group, topic, partition)
);

-- Most events are accepted by a channel at their first attempt. Instead of a row each in
-- webhook_deliveries (one per event per channel, written beside the requests' own rows),
-- a channel's reader records, once per page of the trail, which events it delivered at
-- once and when. webhook_deliveries keeps the events that needed more than one attempt,
-- were refused, or were sent again by an admin; the delivery log reads both.
CREATE TABLE webhook_delivered_pages (
    endpoint TEXT NOT NULL,
    last_seq BIGINT NOT NULL,
    first_seq BIGINT NOT NULL,
    -- The events' sequence numbers, ascending, comma-separated.
    seqs TEXT NOT NULL,
    events INTEGER NOT NULL,
    delivered_at BIGINT NOT NULL,
    PRIMARY KEY (endpoint, last_seq)
);

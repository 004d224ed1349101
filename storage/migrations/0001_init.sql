-- 0001_init: users, the gallery's artworks, analyses with the sets shown, votes and likes.
-- User-owned rows cascade from users, so deleting a user deletes all of their data.

CREATE TABLE users (
    telegram_id   bigint      PRIMARY KEY,
    language      text        NULL,  -- explicit choice via /lang; wins over language_code
    language_code text        NULL,  -- as reported by Telegram
    first_seen    timestamptz NOT NULL DEFAULT now(),
    last_seen     timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE artworks (
    id               integer     PRIMARY KEY,  -- the gallery's artwork id
    title            text        NOT NULL DEFAULT '',
    artist           text        NOT NULL DEFAULT '',
    year             text        NOT NULL DEFAULT '',
    style            text        NOT NULL DEFAULT '',
    genre            text        NOT NULL DEFAULT '',
    source_path      text        NOT NULL DEFAULT '',
    telegram_file_id text        NULL,         -- set after the first upload, re-sent afterwards
    updated_at       timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE analyses (
    id             bigserial   PRIMARY KEY,
    user_id        bigint      NOT NULL REFERENCES users (telegram_id) ON DELETE CASCADE,
    created_at     timestamptz NOT NULL DEFAULT now(),
    image_sha256   text        NOT NULL,
    description    text        NOT NULL,
    model_versions jsonb       NOT NULL DEFAULT '{}'::jsonb,
    latency_ms     integer     NOT NULL CHECK (latency_ms >= 0),
    from_cache     boolean     NOT NULL DEFAULT false,
    -- target of the (analysis_id, user_id) foreign keys below: feedback can only refer to one's own analysis
    CONSTRAINT analyses_id_user_id_key UNIQUE (id, user_id)
);
CREATE INDEX analyses_user_id_created_at_idx ON analyses (user_id, created_at DESC);

CREATE TABLE shown_sets (
    analysis_id bigint    NOT NULL REFERENCES analyses (id) ON DELETE CASCADE,
    recommender text      NOT NULL,
    side        text      NOT NULL CHECK (side IN ('left', 'right')),
    artwork_ids integer[] NOT NULL,  -- in the order shown
    PRIMARY KEY (analysis_id, side),
    CONSTRAINT shown_sets_analysis_id_recommender_key UNIQUE (analysis_id, recommender)
);

CREATE TABLE votes (
    user_id     bigint      NOT NULL REFERENCES users (telegram_id) ON DELETE CASCADE,
    analysis_id bigint      NOT NULL,
    choice      text        NOT NULL CHECK (choice IN ('left', 'right', 'both', 'neither')),
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, analysis_id),
    CONSTRAINT votes_own_analysis_fkey FOREIGN KEY (analysis_id, user_id)
        REFERENCES analyses (id, user_id) ON DELETE CASCADE
);
CREATE INDEX votes_analysis_id_idx ON votes (analysis_id);

CREATE TABLE likes (
    user_id     bigint      NOT NULL REFERENCES users (telegram_id) ON DELETE CASCADE,
    artwork_id  integer     NOT NULL REFERENCES artworks (id) ON DELETE CASCADE,
    value       smallint    NOT NULL CHECK (value IN (1, -1)),
    analysis_id bigint      NULL,  -- where it was liked; the like outlives that analysis
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, artwork_id),
    CONSTRAINT likes_own_analysis_fkey FOREIGN KEY (analysis_id, user_id)
        REFERENCES analyses (id, user_id) ON DELETE SET NULL (analysis_id)
);
CREATE INDEX likes_analysis_id_idx ON likes (analysis_id);
CREATE INDEX likes_artwork_id_idx ON likes (artwork_id);

-- 0002_feedback_loop: the arena's interleaving mode, personal suggestions (/foryou, onboarding, daily picks),
-- likes made on suggestions, and daily-pick subscriptions. Everything user-owned cascades from users.

-- 'sides': two sets side by side and a vote; 'interleaved': one team-draft set, credit from likes.
-- For an interleaved analysis shown_sets holds each team's works (team a = 'left', team b = 'right') and
-- display_ids the merged order the user saw.
ALTER TABLE analyses
    ADD COLUMN mode        text      NOT NULL DEFAULT 'sides' CHECK (mode IN ('sides', 'interleaved')),
    ADD COLUMN display_ids integer[] NULL;

CREATE TABLE suggestions (
    id          bigserial   PRIMARY KEY,
    user_id     bigint      NOT NULL REFERENCES users (telegram_id) ON DELETE CASCADE,
    kind        text        NOT NULL CHECK (kind IN ('foryou', 'onboarding', 'daily')),
    artwork_ids integer[]   NOT NULL,             -- in the order shown
    because     jsonb       NOT NULL DEFAULT '{}'::jsonb,  -- {"<artwork id>": <liked artwork id>}
    created_at  timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT suggestions_id_user_id_key UNIQUE (id, user_id)
);
CREATE INDEX suggestions_user_id_created_at_idx ON suggestions (user_id, created_at DESC);

ALTER TABLE likes ADD COLUMN suggestion_id bigint NULL;
ALTER TABLE likes ADD CONSTRAINT likes_own_suggestion_fkey FOREIGN KEY (suggestion_id, user_id)
    REFERENCES suggestions (id, user_id) ON DELETE SET NULL (suggestion_id);

CREATE TABLE daily_subscriptions (
    user_id            bigint      PRIMARY KEY REFERENCES users (telegram_id) ON DELETE CASCADE,
    hour               smallint    NOT NULL CHECK (hour BETWEEN 0 AND 23),        -- local hour chosen by the user
    utc_offset_minutes smallint    NOT NULL DEFAULT 0 CHECK (utc_offset_minutes BETWEEN -720 AND 840),
    next_run_at        timestamptz NOT NULL,   -- survives restarts: the sender picks up whatever is due
    last_sent_at       timestamptz NULL,
    failures           smallint    NOT NULL DEFAULT 0,
    created_at         timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX daily_subscriptions_next_run_at_idx ON daily_subscriptions (next_run_at);

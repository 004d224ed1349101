-- 0004_search_analyses: sets answered to words (/search, a plain text message) and to a colour (/color) are
-- recorded like a photo's, so the arena can pit text recommenders and likes point at where they were made.
-- kind says what was asked; query_text holds the words or the colour as searched (NULL for a photo). Only a
-- photo has an image hash.
ALTER TABLE analyses
    ADD COLUMN kind       text NOT NULL DEFAULT 'photo' CHECK (kind IN ('photo', 'text', 'colour')),
    ADD COLUMN query_text text NULL,
    ALTER COLUMN image_sha256 DROP NOT NULL,
    ADD CONSTRAINT analyses_kind_has_its_query
        CHECK ((kind = 'photo') = (image_sha256 IS NOT NULL) AND (kind = 'photo') = (query_text IS NULL));

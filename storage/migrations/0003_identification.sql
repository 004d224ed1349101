-- 0003_identification: what the bot recognised in a photo ("this is «Title», Artist") and in which language it
-- answered. matched_artwork_id is the gallery work claimed (NULL: no claim, the usual case), match_confidence the
-- calibrated confidence of that claim; language the catalogue the answer was written in (the description included).
ALTER TABLE analyses
    ADD COLUMN matched_artwork_id integer NULL CHECK (matched_artwork_id >= 0),
    ADD COLUMN match_confidence   real    NULL CHECK (match_confidence BETWEEN 0 AND 1),
    ADD COLUMN language           text    NULL,
    ADD CONSTRAINT analyses_match_has_confidence
        CHECK ((matched_artwork_id IS NULL) = (match_confidence IS NULL));

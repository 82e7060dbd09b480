CREATE TABLE scores (
    id        BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    player_id BIGINT NOT NULL REFERENCES players (id) ON DELETE CASCADE,
    place     VARCHAR(100) NOT NULL,
    points    INTEGER NOT NULL CHECK (points > 0),
    scored_at TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE INDEX scores_player_id ON scores (player_id);

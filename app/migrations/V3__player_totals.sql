-- Each player's total, kept up to date by the database itself in the transaction that
-- adds a score (a row lock on the player's total: concurrent scores add up, none is lost),
-- so that a ranking reads the top of an index instead of summing every score. Name and
-- city are copied in (a player's never change) for the ranking's two indexes.
--
-- Safe while the previous web still serves: it keeps reading players and scores as it
-- did, and the scores it adds are counted by the trigger, which runs as this schema's
-- owner (SECURITY DEFINER): web's role needs no new privilege to write. The tables are
-- locked against writes (not reads) from the start, so that the fill below counts every
-- score committed before, and the trigger every score after: writes wait for the fill.
LOCK TABLE players, scores IN SHARE ROW EXCLUSIVE MODE;

CREATE TABLE player_totals (
    player_id    BIGINT PRIMARY KEY REFERENCES players (id) ON DELETE CASCADE,
    name         VARCHAR(20) NOT NULL,
    city         VARCHAR(100) NOT NULL,
    total_points BIGINT NOT NULL DEFAULT 0,
    score_count  BIGINT NOT NULL DEFAULT 0
);

INSERT INTO player_totals (player_id, name, city, total_points, score_count)
SELECT p.id, p.name, p.city, COALESCE(SUM(s.points), 0), COUNT(s.id)
FROM players p LEFT JOIN scores s ON s.player_id = p.id
GROUP BY p.id;

-- The ranking's order (ties by name), overall and within a city.
CREATE INDEX player_totals_ranking ON player_totals (total_points DESC, name);
CREATE INDEX player_totals_city_ranking ON player_totals (city, total_points DESC, name);
-- A player's recent scores, newest first (the index on player_id alone goes, last).
CREATE INDEX scores_player_recent ON scores (player_id, id DESC);

-- Once per statement, with the rows it inserted: a statement that adds many scores of one
-- player (an import) updates that player's total once, not once per score.
CREATE FUNCTION player_totals_add_players() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public AS $$
BEGIN
    INSERT INTO player_totals (player_id, name, city)
    SELECT id, name, city FROM inserted;
    RETURN NULL;
END
$$;

CREATE FUNCTION player_totals_add_scores() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public AS $$
BEGIN
    UPDATE player_totals t
    SET total_points = t.total_points + added.points, score_count = t.score_count + added.count
    FROM (
        SELECT player_id, SUM(points) AS points, COUNT(*) AS count
        FROM inserted GROUP BY player_id
    ) added
    WHERE t.player_id = added.player_id;
    RETURN NULL;
END
$$;

REVOKE ALL ON FUNCTION player_totals_add_players() FROM PUBLIC;
REVOKE ALL ON FUNCTION player_totals_add_scores() FROM PUBLIC;

CREATE TRIGGER player_totals_on_players AFTER INSERT ON players
REFERENCING NEW TABLE AS inserted
FOR EACH STATEMENT EXECUTE FUNCTION player_totals_add_players();
CREATE TRIGGER player_totals_on_scores AFTER INSERT ON scores
REFERENCING NEW TABLE AS inserted
FOR EACH STATEMENT EXECUTE FUNCTION player_totals_add_scores();

DROP INDEX scores_player_id;

-- At most one open (queued or running) job per target and kind, however many server nodes
-- share the database: enqueue inserts and lets this index refuse the second one, instead of
-- a check-then-insert that two transactions could both pass. Later duplicates that such a
-- race left behind are cancelled first.
UPDATE jobs SET state = 'cancelled', error = 'a duplicate of an earlier open job'
 WHERE state IN ('queued', 'running')
   AND EXISTS (SELECT 1 FROM jobs o
                WHERE o.target_id = jobs.target_id AND o.kind = jobs.kind
                  AND o.state IN ('queued', 'running')
                  AND (o.created_at < jobs.created_at
                       OR (o.created_at = jobs.created_at AND o.id < jobs.id)));
CREATE UNIQUE INDEX jobs_one_open ON jobs(target_id, kind) WHERE state IN ('queued', 'running');

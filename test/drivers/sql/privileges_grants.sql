-- The least-privilege setup of docs/operations.md, with the group role
-- names as psql variables: psql -v scoring=ROLE -v refitting=ROLE -f ...

-- scoring: read the stored models (every table and view of the schema),
-- but not the recipes, whose queries may name tables it should not know
GRANT USAGE ON SCHEMA pluralrm TO :scoring;
GRANT SELECT ON ALL TABLES IN SCHEMA pluralrm TO :scoring;
REVOKE SELECT ON pluralrm.model_recipes FROM :scoring;

-- refitting: what scoring may, plus writing recipes and versions; no
-- DELETE on models, so drop_model is refused
GRANT :scoring TO :refitting;
GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA pluralrm
    TO :refitting;
REVOKE DELETE ON pluralrm.models FROM :refitting;

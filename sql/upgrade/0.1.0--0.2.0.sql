-- pluralrm upgrade from 0.1.0 to 0.2.0: the changes to objects that 0.1.0
-- created. The build appends the install parts that are new in 0.2.0
-- (NEW_IN_0_2_0 in the Makefile). test/drivers/63_upgrade.sh checks that
-- an upgraded database matches a fresh install.
\echo Use "ALTER EXTENSION pluralrm UPDATE TO '0.2.0'" to load this file. \quit

-- pg_dump saves factor models' priors (0.1.0 lost them, so a restored
-- factor model could not score)
SELECT pg_catalog.pg_extension_config_dump('pluralrm.model_priors', '');

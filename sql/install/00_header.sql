-- pluralrm install script, built from sql/install/*.sql in name order.
\echo Use "CREATE EXTENSION pluralrm" to load this file. \quit

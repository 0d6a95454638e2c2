-- One line per property of every object that belongs to the extension
-- pluralrm, in a fixed order: the fingerprint test/drivers/63_upgrade.sh
-- compares between an upgraded database and a fresh install.
WITH members AS (
    SELECT d.classid, d.objid
      FROM pg_depend d
      JOIN pg_extension e ON e.oid = d.refobjid
     WHERE d.refclassid = 'pg_extension'::regclass AND d.deptype = 'e'
       AND e.extname = 'pluralrm'
), lines AS (
    -- every member, with its comment
    SELECT pg_describe_object(m.classid, m.objid, 0) AS obj,
           'comment: ' || coalesce(obj_description(m.objid,
                                   m.classid::regclass::text), '-') AS line
      FROM members m
    UNION ALL
    -- functions and procedures: whole definition and ACL
    SELECT pg_describe_object(m.classid, m.objid, 0),
           'definition: ' || CASE WHEN p.prokind = 'a' THEN
               format('aggregate %s', p.proargtypes::regtype[]::text)
               ELSE pg_get_functiondef(p.oid) END
           || ' acl: ' || coalesce(p.proacl::text, '-')
      FROM members m JOIN pg_proc p ON p.oid = m.objid
     WHERE m.classid = 'pg_proc'::regclass
    UNION ALL
    -- aggregates: their support functions and flags
    SELECT pg_describe_object(m.classid, m.objid, 0),
           format('aggregate: %s %s %s %s %s %s %s %s', a.aggtransfn,
                  a.aggfinalfn, a.aggcombinefn, a.aggserialfn,
                  a.aggdeserialfn, a.aggtranstype::regtype, a.aggkind,
                  a.aggfinalmodify)
      FROM members m JOIN pg_aggregate a ON a.aggfnoid = m.objid
     WHERE m.classid = 'pg_proc'::regclass
    UNION ALL
    -- tables, views, sequences, types' relations: columns, ACL, options
    SELECT pg_describe_object(m.classid, m.objid, 0),
           format('column %s %s notnull=%s default=%s comment=%s',
                  a.attname, format_type(a.atttypid, a.atttypmod),
                  a.attnotnull, pg_get_expr(ad.adbin, ad.adrelid),
                  col_description(c.oid, a.attnum))
      FROM members m
      JOIN pg_class c ON c.oid = m.objid
      JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0
                         AND NOT a.attisdropped
      LEFT JOIN pg_attrdef ad ON ad.adrelid = c.oid AND ad.adnum = a.attnum
     WHERE m.classid = 'pg_class'::regclass
    UNION ALL
    SELECT pg_describe_object(m.classid, m.objid, 0),
           format('relation kind=%s acl=%s options=%s view=%s', c.relkind,
                  c.relacl, c.reloptions,
                  CASE WHEN c.relkind = 'v' THEN pg_get_viewdef(c.oid) END)
      FROM members m JOIN pg_class c ON c.oid = m.objid
     WHERE m.classid = 'pg_class'::regclass
    UNION ALL
    -- composite types of the extension (CREATE TYPE ... AS)
    SELECT pg_describe_object(m.classid, m.objid, 0),
           format('attribute %s %s', a.attname,
                  format_type(a.atttypid, a.atttypmod))
      FROM members m
      JOIN pg_type t ON t.oid = m.objid
      JOIN pg_attribute a ON a.attrelid = t.typrelid AND a.attnum > 0
                         AND NOT a.attisdropped
     WHERE m.classid = 'pg_type'::regclass
    UNION ALL
    -- constraints, indexes and triggers of the extension's tables
    SELECT pg_describe_object(m.classid, m.objid, 0),
           format('constraint %s %s', co.conname,
                  pg_get_constraintdef(co.oid))
      FROM members m JOIN pg_constraint co ON co.conrelid = m.objid
     WHERE m.classid = 'pg_class'::regclass
    UNION ALL
    SELECT pg_describe_object(m.classid, m.objid, 0),
           'index ' || pg_get_indexdef(i.indexrelid)
      FROM members m JOIN pg_index i ON i.indrelid = m.objid
     WHERE m.classid = 'pg_class'::regclass
    UNION ALL
    SELECT pg_describe_object(m.classid, m.objid, 0),
           'trigger ' || pg_get_triggerdef(tg.oid)
      FROM members m JOIN pg_trigger tg ON tg.tgrelid = m.objid
     WHERE m.classid = 'pg_class'::regclass AND NOT tg.tgisinternal
    UNION ALL
    -- the tables pg_dump saves (pg_extension_config_dump)
    SELECT 'extension pluralrm',
           format('dumps %s where %s', c::regclass,
                  e.extcondition[array_position(e.extconfig, c)])
      FROM pg_extension e, unnest(e.extconfig) c
     WHERE e.extname = 'pluralrm'
    UNION ALL
    SELECT 'extension pluralrm', 'version ' || extversion
      FROM pg_extension WHERE extname = 'pluralrm'
)
SELECT obj || ' | ' || line FROM lines ORDER BY 1;

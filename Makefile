# pluralrm: PGXS build
EXTENSION = pluralrm
EXTVERSION = 0.1.0
MODULE_big = pluralrm

PG_CONFIG ?= /usr/lib/postgresql/15/bin/pg_config

CORE_SRCS = $(sort $(wildcard src/core/*.c))
PG_SRCS = $(sort $(wildcard src/*.c))
OBJS = $(PG_SRCS:.c=.o) $(CORE_SRCS:.c=.o)

# Install script is built from the parts in sql/install/, in name order.
DATA_built = sql/$(EXTENSION)--$(EXTVERSION).sql
DATA = $(filter-out $(DATA_built),$(wildcard sql/$(EXTENSION)--*--*.sql))

# pg_regress: every sql/NAME.sql that is not an install or upgrade script
REGRESS = $(sort $(basename $(notdir $(filter-out sql/$(EXTENSION)--%,$(wildcard sql/*.sql)))))
REGRESS_OPTS = --inputdir=. --load-extension=$(EXTENSION)

PG_CPPFLAGS = -I$(srcdir)/src -I$(srcdir)/src/core
PG_CFLAGS = -std=gnu99 -Wall -Wextra -Wno-unused-parameter -Wno-sign-compare -Wno-missing-field-initializers
SHLIB_LINK += -lopenblas -lm

EXTRA_CLEAN = test/core/unit test/core/*.o

# No LLVM bitcode: PGXS would set with_llvm = yes itself
override with_llvm = no

PGXS := $(shell $(PG_CONFIG) --pgxs)
include $(PGXS)

# Rebuild objects when any header changes (PGXS tracks no header deps)
$(OBJS): $(wildcard src/*.h src/core/*.h)

sql/$(EXTENSION)--$(EXTVERSION).sql: $(sort $(wildcard sql/install/*.sql))
	cat $^ > $@

# Unit tests of the numerical core: plain C, no server.
.PHONY: unittest
unittest:
	$(MAKE) -C test/core run

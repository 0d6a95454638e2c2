# Reference fit for btl_item_classes: flexmix's EM for a mixture of
# logistic regressions with the rater as grouping, on the +-1 one-hot
# design of item comparisons without an intercept (item 1's column left
# out, so strengths are relative to item 1). Writes the planted
# comparisons and flexmix's estimates to the folder given as argument.
# Usage: Rscript reference.R OUTDIR
suppressPackageStartupMessages(library(flexmix))
out <- commandArgs(trailingOnly = TRUE)[1]
set.seed(20240607)

# 30 raters compare every pair of 6 items twice; raters 1..20 follow
# strengths s1, raters 21..30 strengths s2 (another order, not a mirror)
n_items <- 6
s1 <- c(1.2, 0.7, 0.3, 0, -0.6, -1.1)
s2 <- c(-0.9, 0.4, -0.2, 1.1, 0.8, -0.5)
pairs <- t(combn(n_items, 2))
rows <- list()
for (u in 1:30) {
    s <- if (u <= 20) s1 else s2
    for (rep in 1:2) {
        p <- plogis(s[pairs[, 1]] - s[pairs[, 2]])
        rows[[length(rows) + 1]] <- data.frame(
            rater = u, item_a = pairs[, 1], item_b = pairs[, 2],
            outcome = as.numeric(runif(nrow(pairs)) < p))
    }
}
d <- do.call(rbind, rows)
write.csv(d, file.path(out, "comparisons.csv"), row.names = FALSE)

# the design: +1 for item_a, -1 for item_b, item 1 left out
X <- matrix(0, nrow(d), n_items)
X[cbind(seq_len(nrow(d)), d$item_a)] <- 1
X[cbind(seq_len(nrow(d)), d$item_b)] <- -1
X <- X[, -1]
fd <- data.frame(rater = factor(d$rater))
fd$y <- cbind(d$outcome, 1 - d$outcome)
fd$X <- X

# started from the planted classes; tolerance on the relative change of
# the log-likelihood, no class dropped
init <- ifelse(d$rater <= 20, 1L, 2L)
fit <- flexmix(y ~ 0 + X | rater, data = fd, k = 2, cluster = init,
               model = FLXMRglm(family = "binomial"),
               control = list(tolerance = 1e-13, iter.max = 10000,
                              minprior = 0))
co <- parameters(fit)
pri <- prior(fit)
post <- posterior(fit)
first <- !duplicated(d$rater)
res <- data.frame(what = character(), class = integer(), item = integer(),
                  value = numeric())
res <- rbind(res, data.frame(what = "loglik", class = 0L, item = 0L,
                             value = as.numeric(logLik(fit))))
res <- rbind(res, data.frame(what = "iterations", class = 0L, item = 0L,
                             value = fit@iter))
for (c in 1:2) {
    res <- rbind(res, data.frame(what = "mixing", class = c, item = 0L,
                                 value = pri[c]))
    res <- rbind(res, data.frame(what = "strength", class = c,
                                 item = 1:n_items,
                                 value = c(0, co[, c])))
    res <- rbind(res, data.frame(what = "responsibility", class = c,
                                 item = d$rater[first],
                                 value = post[first, c]))
}
write.csv(res, file.path(out, "flexmix.csv"), row.names = FALSE)

# Reference answers for btl_items from R: BradleyTerry2's BTm on its
# baseball and citations data, and Davidson's tie model on its football
# data fitted as the equivalent Poisson log-linear model with glm.
# Usage: Rscript reference.R OUTDIR
# Writes the data (baseball.csv, citations.csv, football.csv) and the
# answers: ref_items.csv (strength and standard error per item) and
# ref_fits.csv (log-likelihood, nu and its standard error per fit).
suppressPackageStartupMessages(library(BradleyTerry2))
out <- commandArgs(trailingOnly = TRUE)[1]
tight <- glm.control(epsilon = 1e-14, maxit = 100)
items <- list()
fits <- list()

# Strengths relative to the reference item (first level) and their errors
from_btm <- function(dataset, fit, y1, y2) {
    ab <- BTabilities(fit)
    items[[dataset]] <<- data.frame(dataset = dataset, grp = "",
                                    item = rownames(ab),
                                    strength = ab[, "ability"],
                                    se = ab[, "s.e."])
    # logLik of a binomial glm counts choose(n, y); the model's does not
    ll <- as.numeric(logLik(fit)) - sum(lchoose(y1 + y2, y1))
    fits[[dataset]] <<- data.frame(dataset = dataset, grp = "", loglik = ll,
                                   nu = NA, nu_se = NA)
}

data(baseball)
write.csv(data.frame(home = baseball$home.team, away = baseball$away.team,
                     home_wins = baseball$home.wins,
                     away_wins = baseball$away.wins),
          file.path(out, "baseball.csv"), row.names = FALSE)
fit <- BTm(cbind(home.wins, away.wins), home.team, away.team,
           data = baseball, id = "team", control = tight)
from_btm("baseball", fit, baseball$home.wins, baseball$away.wins)

# citations[cited, citing]: the cited journal beats the citing one
data(citations)
long <- as.data.frame(as.table(citations), stringsAsFactors = FALSE)
names(long) <- c("cited", "citing", "count")
write.csv(long, file.path(out, "citations.csv"), row.names = FALSE)
cs <- countsToBinomial(citations)
fit <- BTm(cbind(win1, win2), player1, player2, ~player, id = "player",
           data = cs, control = tight)
from_btm("citations", fit, cs$win1, cs$win2)

# Davidson: per pair, counts of (i wins, j wins, tie) are multinomial with
# probabilities proportional to pi_i, pi_j and nu sqrt(pi_i pi_j), which is
# a Poisson model with a free rate per pair and log-linear predictors
# s_i, s_j and log nu + (s_i + s_j) / 2.
davidson <- function(dataset, grp, home, away, result, ref) {
    teams <- sort(unique(c(home, away)))
    n <- length(teams)
    hi <- match(home, teams)
    ai <- match(away, teams)
    lo <- pmin(hi, ai)
    up <- pmax(hi, ai)
    lo_won <- (result == 1 & hi == lo) | (result == -1 & ai == lo)
    key <- paste(lo, up)
    pairs <- unique(data.frame(lo, up, key))
    y <- c(); pair <- c(); tie <- c()
    x <- matrix(0, 0, n)
    for (k in seq_len(nrow(pairs))) {
        m <- key == pairs$key[k]
        row <- matrix(0, 3, n)
        row[1, pairs$lo[k]] <- 1
        row[2, pairs$up[k]] <- 1
        row[3, c(pairs$lo[k], pairs$up[k])] <- 0.5
        y <- c(y, sum(m & lo_won), sum(m & !lo_won & result != 0),
               sum(m & result == 0))
        pair <- c(pair, rep(k, 3))
        tie <- c(tie, 0, 0, 1)
        x <- rbind(x, row)
    }
    r <- match(ref, teams)
    xs <- x[, -r, drop = FALSE]
    fit <- glm(y ~ 0 + factor(pair) + xs + tie, family = poisson,
               control = tight)
    cf <- coef(fit)
    v <- vcov(fit)
    idx <- c(grep("^xs", names(cf)), which(names(cf) == "tie"))
    s <- rep(0, n)
    s[-r] <- cf[idx[1:(n - 1)]]
    vs <- matrix(0, n, n)
    vs[-r, -r] <- v[idx[1:(n - 1)], idx[1:(n - 1)]]
    if (grp == "") {
        se <- sqrt(diag(vs))
    } else {
        # centred: strengths minus their mean, covariance P V P
        p <- diag(n) - matrix(1 / n, n, n)
        s <- s - mean(s)
        se <- sqrt(pmax(diag(p %*% vs %*% p), 0))
    }
    mu <- fitted(fit)
    tot <- ave(y, pair, FUN = sum)
    ll <- sum(ifelse(y > 0, y * log(mu / tot), 0))
    lognu <- cf["tie"]
    items[[paste(dataset, grp)]] <<- data.frame(dataset = dataset, grp = grp,
                                                item = teams, strength = s,
                                                se = se)
    fits[[paste(dataset, grp)]] <<- data.frame(
        dataset = dataset, grp = grp, loglik = ll, nu = exp(lognu),
        nu_se = exp(lognu) * sqrt(v["tie", "tie"]))
}

data(football)
fb <- data.frame(season = as.character(football$season),
                 home = as.character(football$home),
                 away = as.character(football$away),
                 result = football$result, stringsAsFactors = FALSE)
write.csv(fb, file.path(out, "football.csv"), row.names = FALSE)
davidson("football", "", fb$home, fb$away, fb$result, "Ars")
for (s in unique(fb$season)) {
    m <- fb$season == s
    davidson("football_season", s, fb$home[m], fb$away[m], fb$result[m],
             "Ars")
}

write.csv(do.call(rbind, items), file.path(out, "ref_items.csv"),
          row.names = FALSE)
write.csv(do.call(rbind, fits), file.path(out, "ref_fits.csv"), na = "",
          row.names = FALSE)

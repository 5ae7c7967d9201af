# Reference outputs from R limma for the Python re-implementation (manylm).
#
# Run from the repository root:
#     Rscript tests/reference/limma_core.R
#
# Reads ../shared/data/bladderbatch/{expression.tsv.gz,samples.tsv}, writes
# tests/reference/inputs/* and tests/reference/limma/*.
# All numbers are written with 17 significant digits ("%.17g"), missing as NA,
# NaN as NaN, infinities as Inf / -Inf. Tab separated, header row.

suppressPackageStartupMessages(library(limma))

ref_dir <- file.path("tests", "reference")
in_dir <- file.path(ref_dir, "inputs")
out_dir <- file.path(ref_dir, "limma")
dir.create(in_dir, showWarnings = FALSE, recursive = TRUE)
dir.create(out_dir, showWarnings = FALSE, recursive = TRUE)

shared <- file.path("..", "shared", "data", "bladderbatch")

cat(R.version.string, "\n")
cat("limma", as.character(packageVersion("limma")), "\n")

# ---------------------------------------------------------------------------
# Writers
# ---------------------------------------------------------------------------

source(file.path("tests", "reference", "reference_writers.R"))

# Log of warnings per case (written to limma/warnings.tsv)
warn_log <- data.frame(case = character(0), warning = character(0),
                       stringsAsFactors = FALSE)

scalar_log <- data.frame(case = character(0), df_prior = character(0),
                         s2_prior = character(0), stringsAsFactors = FALSE)

# Write design, fit, cov, scalars for a fitted (and eBayes/treat-ed) MArrayLM
write_case <- function(case, fit, design = fit$design, extra_scalars = list()) {
  n <- nrow(fit$coefficients)
  if (!is.null(design)) {
    write_tsv(mat_df(design, "sample"), file.path(out_dir, paste0(case, ".design.tsv")))
  }
  coefs <- colnames(fit$coefficients)
  df <- data.frame(feature = rownames(fit$coefficients), stringsAsFactors = FALSE)
  for (cn in coefs) {
    df[[paste0("coef:", cn)]] <- fit$coefficients[, cn]
    df[[paste0("stdev:", cn)]] <- fit$stdev.unscaled[, cn]
    if (!is.null(fit$t)) df[[paste0("t:", cn)]] <- fit$t[, cn]
    if (!is.null(fit$p.value)) df[[paste0("p:", cn)]] <- fit$p.value[, cn]
    if (!is.null(fit$lods)) df[[paste0("lods:", cn)]] <- fit$lods[, cn]
  }
  df$sigma <- fit$sigma
  df$df_residual <- fit$df.residual
  df$Amean <- if (is.null(fit$Amean)) NA_real_ else fit$Amean
  if (!is.null(fit$s2.post)) df$s2_post <- fit$s2.post
  if (!is.null(fit$df.total)) df$df_total <- fit$df.total
  if (!is.null(fit$df.prior)) df$df_prior <- rep_to(fit$df.prior, n)
  if (!is.null(fit$s2.prior)) df$s2_prior <- rep_to(fit$s2.prior, n)
  if (!is.null(fit$F)) {
    df$F <- fit$F
    df$F_p <- fit$F.p.value
  }
  write_tsv(df, file.path(out_dir, paste0(case, ".fit.tsv.gz")))
  if (!is.null(fit$cov.coefficients)) {
    write_tsv(mat_df(fit$cov.coefficients, "coefficient"),
              file.path(out_dir, paste0(case, ".cov.tsv")))
  }
  sc <- list()
  if (!is.null(fit$df.prior) && length(fit$df.prior) == 1L) sc$df_prior <- fit$df.prior
  if (!is.null(fit$s2.prior) && length(fit$s2.prior) == 1L) sc$s2_prior <- fit$s2.prior
  if (!is.null(fit$var.prior)) {
    for (i in seq_along(fit$var.prior)) sc[[paste0("var_prior:", coefs[i])]] <- fit$var.prior[i]
  }
  if (!is.null(fit$proportion)) sc$proportion <- fit$proportion
  if (!is.null(fit$treat.lfc)) sc$treat_lfc <- fit$treat.lfc
  sc$n_features <- n
  sc$n_coefficients <- length(coefs)
  if (!is.null(design)) {
    sc$n_samples <- nrow(design)
    sc$design_rank <- qr(design)$rank
  }
  if (!is.null(fit$rank)) sc$fit_rank <- fit$rank
  sc$has_F <- as.numeric(!is.null(fit$F))
  if (!is.null(fit$F)) {
    # numerator df of the F statistic as used by classifyTestsF
    Fs <- classifyTestsF(fit, fstat.only = TRUE)
    sc$F_df1 <- attr(Fs, "df1")
    if (length(attr(Fs, "df2")) == 1L) sc$F_df2 <- attr(Fs, "df2")
  }
  sc$df_pooled <- sum(fit$df.residual, na.rm = TRUE)
  sc$n_df_residual_zero <- sum(fit$df.residual == 0)
  sc$n_sigma_na <- sum(is.na(fit$sigma))
  if (!is.null(fit$df.prior)) {
    sc$df_prior_min <- min(fit$df.prior)
    sc$df_prior_max <- max(fit$df.prior)
  }
  if (!is.null(fit$s2.prior)) {
    sc$s2_prior_min <- min(fit$s2.prior)
    sc$s2_prior_max <- max(fit$s2.prior)
  }
  for (nm in names(extra_scalars)) sc[[nm]] <- extra_scalars[[nm]]
  scdf <- data.frame(name = names(sc), value = unlist(lapply(sc, as.double)),
                     stringsAsFactors = FALSE)
  write_tsv(scdf, file.path(out_dir, paste0(case, ".scalars.tsv")))
  scalar_log[nrow(scalar_log) + 1, ] <<- c(
    case,
    if (is.null(fit$df.prior)) "NULL" else if (length(fit$df.prior) == 1L) fmt_num(fit$df.prior) else
      sprintf("vector [%s, %s]", fmt_num(min(fit$df.prior)), fmt_num(max(fit$df.prior))),
    if (is.null(fit$s2.prior)) "NULL" else if (length(fit$s2.prior) == 1L) fmt_num(fit$s2.prior) else
      sprintf("vector [%s, %s]", fmt_num(min(fit$s2.prior)), fmt_num(max(fit$s2.prior))))
  invisible(NULL)
}

write_top <- function(case, label, tab) {
  df <- data.frame(feature = rownames(tab), stringsAsFactors = FALSE)
  for (cn in colnames(tab)) df[[cn]] <- tab[[cn]]
  write_tsv(df, file.path(out_dir, paste0(case, ".top_", label, ".tsv.gz")))
}

# ---------------------------------------------------------------------------
# Inputs: bladder
# ---------------------------------------------------------------------------

expr_full <- read.delim(file.path(shared, "expression.tsv.gz"), check.names = FALSE,
                        stringsAsFactors = FALSE)
samples <- read.delim(file.path(shared, "samples.tsv"), check.names = FALSE,
                      stringsAsFactors = FALSE)
stopifnot(identical(colnames(expr_full)[-1], samples$sample))

keep <- seq(1L, nrow(expr_full), by = 11L)
y <- as.matrix(expr_full[keep, -1])
rownames(y) <- expr_full$feature[keep]
storage.mode(y) <- "double"
rm(expr_full)
cat("bladder subset:", nrow(y), "x", ncol(y), "\n")

write_tsv(mat_df(y, "feature"), file.path(in_dir, "bladder_expr.tsv.gz"))
write_tsv(samples, file.path(in_dir, "bladder_samples.tsv"))

cancer <- factor(samples$cancer, levels = c("Normal", "Biopsy", "Cancer"))
batch <- factor(samples$batch)
A <- model.matrix(~ cancer + batch)
rownames(A) <- samples$sample
B <- model.matrix(~ 0 + cancer + batch)
rownames(B) <- samples$sample
colnames(B)[1:3] <- c("Normal", "Biopsy", "Cancer")
cm <- makeContrasts(CvB = Cancer - Biopsy, CvN = Cancer - Normal, BvN = Biopsy - Normal,
                    levels = B)

# ---------------------------------------------------------------------------
# 1-4. dense / trend / robust / trend_robust
# ---------------------------------------------------------------------------

fit <- run_case("dense_lmFit", lmFit_logged("dense_lmFit", y, A))

run_case("dense", {
  eb <- eBayes(fit)
  write_case("dense", eb)
  write_top("dense", "cancerCancer",
            topTable(eb, coef = "cancerCancer", number = Inf, sort.by = "none", confint = TRUE))
  write_top("dense", "cancer_F",
            topTable(eb, coef = c("cancerBiopsy", "cancerCancer"), number = Inf, sort.by = "none"))
  write_top("dense", "cancerCancer_ci90",
            topTable(eb, coef = "cancerCancer", number = Inf, sort.by = "none", confint = 0.90))
  write_top("dense", "cancerCancer_sortP",
            topTable(eb, coef = "cancerCancer", number = Inf, sort.by = "P", adjust.method = "BY"))
  write_top("dense", "cancerCancer_filtered",
            topTable(eb, coef = "cancerCancer", number = Inf, p.value = 0.05, lfc = 1,
                     sort.by = "logFC"))
})

for (cs in list(list("trend", TRUE, FALSE), list("robust", FALSE, TRUE),
                list("trend_robust", TRUE, TRUE))) {
  run_case(cs[[1]], {
    eb <- eBayes(fit, trend = cs[[2]], robust = cs[[3]])
    write_case(cs[[1]], eb)
    write_top(cs[[1]], "cancerCancer",
              topTable(eb, coef = "cancerCancer", number = Inf, sort.by = "none", confint = TRUE))
    write_top(cs[[1]], "cancer_F",
              topTable(eb, coef = c("cancerBiopsy", "cancerCancer"), number = Inf, sort.by = "none"))
  })
}

# ---------------------------------------------------------------------------
# 5. treat / treat_trend
# ---------------------------------------------------------------------------

for (cs in list(list("treat", FALSE), list("treat_trend", TRUE))) {
  run_case(cs[[1]], {
    tr <- treat(fit, lfc = log2(1.2), trend = cs[[2]])
    write_case(cs[[1]], tr)
    write_top(cs[[1]], "cancerCancer",
              topTreat(tr, coef = "cancerCancer", number = Inf, sort.by = "none", confint = TRUE))
  })
}

# ---------------------------------------------------------------------------
# 6. contrasts
# ---------------------------------------------------------------------------

write_tsv(mat_df(cm, "coefficient"), file.path(out_dir, "contrasts.contrast_matrix.tsv"))

run_case("contrasts", {
  fitB <- lmFit_logged("contrasts", y, B)
  fit2 <- contrasts.fit(fitB, cm)
  eb <- eBayes(fit2)
  write_case("contrasts", eb, design = B,
             extra_scalars = list(contrast_rank = qr(cm)$rank))
  write_top("contrasts", "CvB",
            topTable(eb, coef = "CvB", number = Inf, sort.by = "none", confint = TRUE))
  write_top("contrasts", "F", topTable(eb, number = Inf, sort.by = "none"))
  ds <- decideTests(eb, method = "separate", adjust.method = "BH", p.value = 0.05)
  write_tsv(mat_df(unclass(ds), "feature"), file.path(out_dir, "contrasts.decide_separate.tsv"))
  dg <- decideTests(eb, method = "global", adjust.method = "BH", p.value = 0.05)
  write_tsv(mat_df(unclass(dg), "feature"), file.path(out_dir, "contrasts.decide_global.tsv"))
})

# ---------------------------------------------------------------------------
# 7. missing / missing_contrasts
# ---------------------------------------------------------------------------

set.seed(20261121)
ym <- y
na_idx <- sample(length(ym), round(0.03 * length(ym)))
ym[na_idx] <- NA
ym[1, ] <- NA
ym[2, ] <- NA
ym[2, 1:3] <- y[2, 1:3]
ym[3, ] <- y[3, ]
ym[3, batch == "2"] <- NA
ym[4, ] <- y[4, ]
ym[4, cancer == "Biopsy"] <- NA
write_tsv(mat_df(ym, "feature"), file.path(in_dir, "bladder_missing_expr.tsv.gz"))

run_case("missing", {
  fitm <- lmFit_logged("missing", ym, A)
  eb <- eBayes(fitm)
  write_case("missing", eb, extra_scalars = list(n_na_cells = sum(is.na(ym))))
  write_top("missing", "cancerCancer",
            topTable(eb, coef = "cancerCancer", number = Inf, sort.by = "none", confint = TRUE))
  write_top("missing", "cancer_F",
            topTable(eb, coef = c("cancerBiopsy", "cancerCancer"), number = Inf, sort.by = "none"))
})

run_case("missing_contrasts", {
  fitmB <- lmFit_logged("missing_contrasts", ym, B)
  fit2 <- contrasts.fit(fitmB, cm)
  eb <- eBayes(fit2)
  write_case("missing_contrasts", eb, design = B)
  write_top("missing_contrasts", "CvB",
            topTable(eb, coef = "CvB", number = Inf, sort.by = "none", confint = TRUE))
  write_top("missing_contrasts", "F", topTable(eb, number = Inf, sort.by = "none"))
})

# ---------------------------------------------------------------------------
# 8. weights (observation-level)
# ---------------------------------------------------------------------------

set.seed(7)
W <- matrix(rgamma(length(y), shape = 2, rate = 2), nrow(y), ncol(y),
            dimnames = dimnames(y))
write_tsv(mat_df(W, "feature"), file.path(in_dir, "bladder_weights.tsv.gz"))

run_case("weights", {
  fitw <- lmFit_logged("weights", y, A, weights = W)
  eb <- eBayes(fitw)
  write_case("weights", eb)
  write_top("weights", "cancerCancer",
            topTable(eb, coef = "cancerCancer", number = Inf, sort.by = "none", confint = TRUE))
})

# ---------------------------------------------------------------------------
# 9. array_weights (per-sample weight vector)
# ---------------------------------------------------------------------------

aw <- seq(0.5, 2, length.out = ncol(y))
write_tsv(data.frame(sample = colnames(y), weight = aw),
          file.path(out_dir, "array_weights.weights.tsv"))

run_case("array_weights", {
  fita <- lmFit_logged("array_weights", y, A, weights = aw)
  eb <- eBayes(fita)
  write_case("array_weights", eb)
  write_top("array_weights", "cancerCancer",
            topTable(eb, coef = "cancerCancer", number = Inf, sort.by = "none", confint = TRUE))
})

# ---------------------------------------------------------------------------
# 10. rank_deficient
# ---------------------------------------------------------------------------

run_case("rank_deficient", {
  Ar <- cbind(A, extra = A[, "batch2"] + A[, "batch3"])
  fitr <- lmFit_logged("rank_deficient", y, Ar)
  eb <- eBayes(fitr)
  write_case("rank_deficient", eb, design = Ar,
             extra_scalars = list(F_exists = as.numeric(!is.null(eb$F)),
                                  is_fullrank = as.numeric(is.fullrank(Ar))))
  write_top("rank_deficient", "cancerCancer",
            topTable(eb, coef = "cancerCancer", number = Inf, sort.by = "none", confint = TRUE))
})

# ---------------------------------------------------------------------------
# 11. synth_edge
# ---------------------------------------------------------------------------

set.seed(11)
ns <- 12L
ss <- data.frame(sample = sprintf("S%02d", seq_len(ns)),
                 group = rep(c("A", "B"), length.out = ns),
                 batch = rep(c("b1", "b2", "b3"), each = 4),
                 age = round(runif(ns, 20, 80)),
                 stringsAsFactors = FALSE)
write_tsv(ss, file.path(in_dir, "synth_edge_samples.tsv"))
De <- model.matrix(~ group + batch + age, data = ss)
rownames(De) <- ss$sample

n_ord <- 394L
mu <- rnorm(n_ord, 8, 1)
d0 <- 4; s0 <- 0.3
sds <- sqrt(d0 * s0^2 / rchisq(n_ord, df = d0))
ye <- matrix(rnorm(n_ord * ns), n_ord, ns) * sds + mu
grpB <- ss$group == "B"
ye[1:40, grpB] <- ye[1:40, grpB] + rep(c(1.5, -1.5), 20)
rownames(ye) <- sprintf("g%03d", seq_len(n_ord))

const <- rep(7, ns)
exact_fit <- as.vector(De %*% c(5, 1, 0.5, -0.5, 0.01))
bigmean <- 1e6 + rnorm(ns, sd = 0.01)
allNA <- rep(NA_real_, ns)
fewobs <- rnorm(ns, 8, 0.5); fewobs[-c(1, 2, 5, 9)] <- NA
onegroup <- rnorm(ns, 8, 0.5); onegroup[grpB] <- NA
ye <- rbind(ye, const = const, exact_fit = exact_fit, bigmean = bigmean,
            allNA = allNA, fewobs = fewobs, onegroup = onegroup)
colnames(ye) <- ss$sample
write_tsv(mat_df(ye, "feature"), file.path(in_dir, "synth_edge_expr.tsv.gz"))

fite <- run_case("synth_edge_lmFit", lmFit_logged("synth_edge_lmFit", ye, De))
for (cs in list(list("synth_edge", FALSE, FALSE), list("synth_edge_trend", TRUE, FALSE),
                list("synth_edge_robust", FALSE, TRUE))) {
  run_case(cs[[1]], {
    eb <- eBayes(fite, trend = cs[[2]], robust = cs[[3]])
    write_case(cs[[1]], eb)
    write_top(cs[[1]], "groupB",
              topTable(eb, coef = "groupB", number = Inf, sort.by = "none", confint = TRUE))
    write_top(cs[[1]], "F",
              topTable(eb, coef = colnames(De)[-1], number = Inf, sort.by = "none"))
  })
}

# eBayes(trend=TRUE) on synth_edge fails in R ("NA covariate values not allowed")
# because Amean of the allNA row is NaN. Supplementary case: same fit with the
# allNA row removed (fit object subset, no refit).
run_case("synth_edge_trend_dropNA", {
  fsub <- fite[rownames(fite$coefficients) != "allNA", ]
  eb <- eBayes(fsub, trend = TRUE)
  write_case("synth_edge_trend_dropNA", eb, design = De)
  write_top("synth_edge_trend_dropNA", "groupB",
            topTable(eb, coef = "groupB", number = Inf, sort.by = "none", confint = TRUE))
  write_top("synth_edge_trend_dropNA", "F",
            topTable(eb, coef = colnames(De)[-1], number = Inf, sort.by = "none"))
})

# ---------------------------------------------------------------------------
# 12. synth_small (n = p + 1)
# ---------------------------------------------------------------------------

set.seed(5)
sm <- data.frame(sample = paste0("S", 1:4), group = c("A", "A", "B", "B"),
                 age = c(30, 45, 50, 62), stringsAsFactors = FALSE)
write_tsv(sm, file.path(in_dir, "synth_small_samples.tsv"))
Ds <- model.matrix(~ group + age, data = sm)
rownames(Ds) <- sm$sample
ysm <- matrix(rnorm(300 * 4, 8, 1), 300, 4,
              dimnames = list(sprintf("f%03d", 1:300), sm$sample))
write_tsv(mat_df(ysm, "feature"), file.path(in_dir, "synth_small_expr.tsv.gz"))

run_case("synth_small", {
  eb <- eBayes(lmFit_logged("synth_small", ysm, Ds))
  write_case("synth_small", eb)
  write_top("synth_small", "groupB",
            topTable(eb, coef = "groupB", number = Inf, sort.by = "none", confint = TRUE))
})

# ---------------------------------------------------------------------------
# 13. padjust
# ---------------------------------------------------------------------------

set.seed(3)
p <- c(runif(150), rbeta(50, 0.2, 5))
p <- p[sample(200)]
p[c(17, 58, 101, 140, 199)] <- NA
p[10] <- p[20]
p[30] <- p[40]
p[50] <- p[60]
p[70] <- 1
pv <- data.frame(feature = sprintf("p%03d", 1:200), p = p, stringsAsFactors = FALSE)
write_tsv(pv, file.path(in_dir, "pvalues.tsv"))
run_case("padjust", {
  write_tsv(data.frame(feature = pv$feature, p = p,
                       BH = p.adjust(p, "BH"), BY = p.adjust(p, "BY"),
                       holm = p.adjust(p, "holm"), bonferroni = p.adjust(p, "bonferroni"),
                       stringsAsFactors = FALSE),
            file.path(out_dir, "padjust.tsv"))
})

# ---------------------------------------------------------------------------
# Logs
# ---------------------------------------------------------------------------

write_tsv(warn_log, file.path(out_dir, "warnings.tsv"))
write_tsv(scalar_log, file.path(out_dir, "prior_summary.tsv"))
write_tsv(data.frame(name = c("R", "limma"),
                     value = c(R.version.string, as.character(packageVersion("limma"))),
                     stringsAsFactors = FALSE),
          file.path(out_dir, "versions.tsv"))
print(scalar_log)
cat("done\n")

//! Travial's web service: players of a city-tourism game, their scores and a ranking.

pub mod config;
pub mod db;
pub mod healthcheck;
pub mod http;

-- The todolist: users and their todos. Every query of the functions filters by owner; row-level
-- security on todos, from the caller's JWT claim, is the second line of defence. FORCE makes the
-- policy bind the tables' owner too (the role sff connects as); only superusers bypass it.

create table users (
    id            bigint generated always as identity primary key,
    username      text not null check (length(username) between 3 and 64),
    password_hash text not null,
    name          text not null default '',
    email         text not null default '',
    signature     text not null default '',
    title         text not null default '',
    "group"       text not null default '',
    country       text not null default '',
    address       text not null default '',
    phone         text not null default '',
    tags          jsonb not null default '[]',
    avatar_key    text,
    role          text not null default 'user' check (role in ('user', 'admin')),
    created_at    timestamptz not null default now(),
    updated_at    timestamptz not null default now()
);
create unique index users_username_lower on users (lower(username));

create table todos (
    id         bigint generated always as identity primary key,
    owner      bigint not null references users (id) on delete cascade,
    name       text not null check (length(name) between 1 and 500),
    "desc"     text not null default '',
    status     smallint not null default 0 check (status between 0 and 3),
    progress   smallint not null default 0 check (progress between 0 and 100),
    call_no    integer not null default 0,
    href       text not null default '',
    avatar     text not null default '',
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now()
);
-- the lists: newest first per owner (v1 pages by id), and the legacy status filter
create index todos_owner_id on todos (owner, id desc);
create index todos_owner_status on todos (owner, status);

alter table todos enable row level security;
alter table todos force row level security;
create policy todos_owner on todos
    using (owner = nullif(current_setting('request.jwt.claim.sub', true), '')::bigint)
    with check (owner = nullif(current_setting('request.jwt.claim.sub', true), '')::bigint);
